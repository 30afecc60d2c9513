use std::process::ExitCode;

use clap::Parser;
use todo_event_service::{telemetry, Application, Config};

// NB: jemalloc serves the whole process: the feature
// `unprefixed_malloc_on_supported_platforms` makes it `malloc` itself, so
// librdkafka's C allocations use it too. glibc's malloc was a fifth of the
// backend's CPU samples at saturation (docs/performance.md, 2 Dec 17:26 UTC).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
