use std::process::ExitCode;

use clap::Parser;
use todo_event_service::{telemetry, Application, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init(&config.log_format);
    if config.migrate_only {
        return todo_runtime::run_once(
            "todo-event-service",
            todo_event_service::startup::migrate(&config),
        )
        .await;
    }
    todo_runtime::run_service(
        "todo-event-service",
        Application::build(config),
        Application::run_until_stopped,
    )
    .await
}
