use clap::Parser;
use todo_event_service::{telemetry, Application, Config};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(&config.log_format);
    let app = Application::build(config).await?;
    tracing::info!(addr = %app.local_addr(), "todo-event-service listening");
    let cancel = CancellationToken::new();
    tokio::spawn(todo_runtime::cancel_on_signal(cancel.clone()));
    app.run_until_stopped(cancel).await?;
    tracing::info!("todo-event-service stopped");
    Ok(())
}
