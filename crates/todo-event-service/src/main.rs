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
    tokio::spawn(shutdown_on_signal(cancel.clone()));
    app.run_until_stopped(cancel).await?;
    tracing::info!("todo-event-service stopped");
    Ok(())
}

/// Cancels on SIGTERM or Ctrl-C.
async fn shutdown_on_signal(cancel: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested");
    cancel.cancel();
}
