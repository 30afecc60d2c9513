use std::process::ExitCode;

use clap::Parser;
use todo_backend::{telemetry, Application, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init(&config.log_format);
    if config.migrate_only {
        let migrate = todo_backend::store::migrations::MIGRATIONS.run(config.database_url.expose());
        return todo_runtime::run_once("todo-backend", migrate).await;
    }
    todo_runtime::run_service(
        "todo-backend",
        Application::build(config),
        Application::run_until_stopped,
    )
    .await
}
