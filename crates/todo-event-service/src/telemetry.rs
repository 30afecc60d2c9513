//! Logging. Request spans and HTTP metrics come from `todo_runtime::http`.

/// Installs the global subscriber: `RUST_LOG` filter (default info), text or JSON.
pub fn init(format: &str) {
    todo_runtime::init_tracing(format);
}
