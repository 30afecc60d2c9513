//! The Dapr sidecar as a transport, over its HTTP API (runtime 1.14):
//!
//! * [`publish`]: the bulk publish API with `rawPayload`, so a record written
//!   through the sidecar has the same bytes, key and headers as one written
//!   to Kafka directly (the backend's relay);
//! * [`subscribe`]: what a subscriber serves on `GET /dapr/subscribe`, the
//!   CloudEvent deliveries it receives (single or bulk), and its answers
//!   (the event service's Dapr intake).

pub mod publish;
pub mod subscribe;

/// The sidecar settings of a service in Dapr mode (fields prefixed: clap
/// names an argument after its field, and a service's other groups have a
/// `timeout_ms` of their own).
#[derive(clap::Args, Debug, Clone)]
pub struct DaprArgs {
    /// Host of the Dapr sidecar's HTTP API.
    #[arg(long = "dapr-host", env = "DAPR_HOST", default_value = "127.0.0.1")]
    pub dapr_host: String,
    /// Port of the Dapr sidecar's HTTP API.
    #[arg(
        long = "dapr-http-port",
        env = "DAPR_HTTP_PORT",
        default_value_t = 3500
    )]
    pub dapr_http_port: u16,
    /// The Dapr pub/sub component (deploy/dapr/pubsub.yaml).
    #[arg(
        long = "dapr-pubsub-name",
        env = "DAPR_PUBSUB_NAME",
        default_value = "kafka-pubsub"
    )]
    pub dapr_pubsub: String,
    /// Timeout of one request to the sidecar.
    #[arg(
        long = "dapr-timeout-ms",
        env = "DAPR_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub dapr_timeout_ms: u64,
    /// A subscriber's bulk deliveries: the longest a partition's records wait
    /// for more before they are delivered. NB: daprd 1.14's Kafka component
    /// delivers one bulk at a time for all partitions of a sidecar, so short
    /// waits mean many small deliveries queued behind each other.
    #[arg(
        long = "dapr-bulk-max-await-ms",
        env = "DAPR_BULK_MAX_AWAIT_MS",
        default_value_t = 100
    )]
    pub dapr_bulk_max_await_ms: u64,
    /// A subscriber's deliveries in bulk (`true`), or one record per request,
    /// each partition's in order (`false`): no bulk wait, and no queueing
    /// behind other partitions' bulks, at one request per record.
    #[arg(
        long = "dapr-bulk-subscribe",
        env = "DAPR_BULK_SUBSCRIBE",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub dapr_bulk_subscribe: bool,
}

impl DaprArgs {
    /// The sidecar these settings name.
    pub fn sidecar(&self) -> Sidecar {
        Sidecar::new(&self.dapr_host, self.dapr_http_port, &self.dapr_pubsub)
    }
}

/// Where a sidecar's HTTP API listens, and its pub/sub component.
#[derive(Clone, Debug)]
pub struct Sidecar {
    /// Base URL of the sidecar's HTTP API, e.g. `http://127.0.0.1:3500`.
    pub base_url: String,
    /// The pub/sub component's name (`kafka-pubsub`).
    pub pubsub: String,
}

impl Sidecar {
    /// The sidecar on `host:port` with pub/sub component `pubsub`.
    pub fn new(host: &str, port: u16, pubsub: &str) -> Self {
        Self {
            base_url: format!("http://{host}:{port}"),
            pubsub: pubsub.to_owned(),
        }
    }

    /// Whether the sidecar is up and its components are ready to publish
    /// (`/v1.0/healthz/outbound`, which needs no app).
    pub async fn ready(&self, http: &reqwest::Client) -> Result<(), String> {
        let url = format!("{}/v1.0/healthz/outbound", self.base_url);
        match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!(
                "Dapr sidecar at {} answered {}",
                self.base_url,
                r.status()
            )),
            Err(e) => Err(format!(
                "Dapr sidecar unreachable at {}: {e}",
                self.base_url
            )),
        }
    }
}
