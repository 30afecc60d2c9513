use std::process::ExitCode;

use clap::Parser;
use todo_event_service::{telemetry, Application, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init(&config.log_format);
    if config.migrate_only {
        let migrate =
            todo_event_service::store::migrations::MIGRATIONS.run(config.database_url.expose());
        return todo_runtime::run_once("todo-event-service", migrate).await;
    }
    todo_runtime::run_service(
        "todo-event-service",
        Application::build(config),
        Application::run_until_stopped,
    )
    .await
}
