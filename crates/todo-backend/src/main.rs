use std::process::ExitCode;

use clap::Parser;
use todo_backend::{telemetry, Application, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init(&config.log_format);
    if config.migrate_only {
        return todo_runtime::run_once("todo-backend", todo_backend::startup::migrate(&config))
            .await;
    }
    todo_runtime::run_service(
        "todo-backend",
        Application::build(config),
        Application::run_until_stopped,
    )
    .await
}
