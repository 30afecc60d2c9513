//! The crate's one error type.

/// What can stop a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad option value (mix, rate, path).
    #[error("invalid option: {0}")]
    Config(String),
    /// An HTTP call that the run depends on (not a load request: those are counted).
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// A database query.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A Kafka client call.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Files of the report.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The JSON report.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// Drawing a plot.
    #[error("plot {0}: {1}")]
    Plot(String, String),
    /// Starting or stopping a process of the stack (a second backend, `./dev`).
    #[error("process: {0}")]
    Process(String),
    /// Anything else, with its cause chain.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
