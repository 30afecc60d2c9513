//! Command line: one subcommand per scenario, `load` for other scripts, and
//! options shared by all (the stack's addresses come from `./dev env`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use todo_events::{ContentType, EventVersion};
use todo_outbox::write::DEFAULT_BATCH_MAX;

use crate::mix::Mix;
use crate::scenario::warmup::Warmup;

/// Concurrent statements of the PostgreSQL ceiling: one per core of the
/// reference machine, so that the ceiling is PostgreSQL's, not one
/// connection's.
const CEILING_WRITERS: usize = 2;

/// todo-bench: drives the running stack over HTTP and reports API latency,
/// end-to-end latency, throughput, lag and the spec's targets.
#[derive(Parser, Debug)]
#[command(name = "todo-bench", version, about)]
pub struct Cli {
    /// The scenario (default: all of them, one after the other).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of every scenario.
    #[command(flatten)]
    pub common: Common,
}

/// The scenarios.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open loop at a constant rate (the spec's sustained load: 1 000 events/s).
    Steady(SteadyArgs),
    /// Rising rates until the pipeline stops keeping up.
    Ramp(RampArgs),
    /// Fill the outbox with the relay stopped, then measure drain and consume rates.
    Backlog(BacklogArgs),
    /// The same load with EVENTS_ENABLED on and off, interleaved in one run.
    Overhead(OverheadArgs),
    /// Closed loop: N workers back to back, the API's maximum throughput.
    Max(MaxArgs),
    /// Restart the services (`--infra`: and PostgreSQL, Redis, Kafka) with
    /// ./dev, then the steady load at once, with no warm-up: how long the
    /// stack takes to reach its steady state.
    Settle(SettleArgs),
    /// Each component alone (PostgreSQL with the backend's create statement,
    /// Kafka with the services' client settings, the HTTP stack on /health),
    /// and the pipeline's sustained rate as a share of the lowest.
    Ceiling(Box<CeilingArgs>),
    /// On the three-broker stack (`./dev up --brokers 3`): a ramp with 1-2
    /// backends and 1-3 event services, then event services joining and
    /// leaving under load, and how long each rebalance takes to absorb.
    Scale(ScaleArgs),
    /// steady, overhead, ramp, hold (10 % below the ramp's highest bounded
    /// rate, that rate, 5 and 10 % above it, 60 s each), backlog and ceiling,
    /// one report.
    All,
    /// Only generate load against BACKEND_URL and print one line:
    /// `requests N ok N failed N p99 X ms` (exit status 0 even if requests failed).
    Load(LoadArgs),
}

/// Options shared by the scenarios.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Short run: every scenario finishes in under a minute.
    #[arg(long, global = true)]
    pub quick: bool,
    /// Seconds of unrecorded load at an open-loop scenario's first rate
    /// before it measures (default: before the process's first scenario,
    /// until the pipeline's latency stops falling, 60 to 180 s; 10 before
    /// the others; 2 with --quick; 0: none).
    #[arg(long, global = true)]
    pub warmup_s: Option<f64>,
    /// Report directory (default `target/bench/<scenario>-<timestamp>/`).
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
    /// Request mix, e.g. `create=40,update=30,complete=15,delete=15`
    /// (`health=1`: the liveness probe alone).
    #[arg(long, global = true, default_value_t = Mix::default())]
    pub mix: Mix,
    /// The backend.
    #[arg(
        long,
        global = true,
        env = "BACKEND_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub backend_url: String,
    /// The event service.
    #[arg(
        long,
        global = true,
        env = "EVENT_SERVICE_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub event_service_url: String,
    /// The backend's database (outbox).
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://todo:todo@127.0.0.1:5432/todo"
    )]
    pub database_url: String,
    /// The event service's database (audit log).
    #[arg(
        long,
        global = true,
        env = "EVENT_DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://todo:todo@127.0.0.1:5432/todo_events"
    )]
    pub event_database_url: String,
    /// The event service's consumer group (for consumer lag).
    #[arg(
        long,
        global = true,
        env = "KAFKA_GROUP_ID",
        default_value = "todo-event-service"
    )]
    pub consumer_group: String,
    /// Request timeout.
    #[arg(long, global = true, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Longest wait after the load for the last events to be processed.
    #[arg(long, global = true, default_value_t = 120)]
    pub drain_timeout_s: u64,
    /// On a shared machine: before each scenario, wait until the machine's
    /// CPU has been less busy than this (percent, over 3 s), for at most
    /// --quiet-wait-s seconds.
    #[arg(long, global = true)]
    pub quiet_below_pct: Option<f64>,
    /// Longest wait for --quiet-below-pct.
    #[arg(long, global = true, default_value_t = 300)]
    pub quiet_wait_s: u64,
    /// Skip the whole-stack `todoctl verify` at the end.
    #[arg(long, global = true)]
    pub no_verify: bool,
    /// The backend binary, for the extra instances of `overhead` and `backlog`.
    #[arg(long, global = true, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/todo-backend"))]
    pub backend_bin: PathBuf,
    /// The event service binary, for the extra instances of `scale`.
    #[arg(long, global = true, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/todo-event-service"))]
    pub event_service_bin: PathBuf,
    /// The repository's `dev` script (backlog stops and starts the backend with it).
    #[arg(long, global = true, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dev"))]
    pub dev_script: PathBuf,
    /// Kafka connection (consumer lag is read from the brokers).
    #[command(flatten)]
    pub kafka: todo_kafka::KafkaArgs,
}

impl Common {
    /// The warm-up chosen (see [`Common::warmup_s`]'s option); `None`: the
    /// default, which depends on what the process ran before.
    pub fn warmup(&self) -> Option<Warmup> {
        match (self.warmup_s, self.quick) {
            (Some(seconds), _) => Some(Warmup::Fixed(seconds.max(0.0))),
            (None, true) => Some(Warmup::Fixed(2.0)),
            (None, false) => None,
        }
    }
}

/// `steady`.
#[derive(Args, Debug, Clone, Default)]
pub struct SteadyArgs {
    /// Requests (= events) per second.
    #[arg(long, default_value_t = 1_000.0)]
    pub rate: f64,
    /// Send window in seconds (default 60; 15 with --quick).
    #[arg(long)]
    pub duration_s: Option<f64>,
}

/// `settle`.
#[derive(Args, Debug, Clone, Default)]
pub struct SettleArgs {
    /// Requests (= events) per second.
    #[arg(long, default_value_t = 1_000.0)]
    pub rate: f64,
    /// Send window in seconds (default 60; 20 with --quick).
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Restart PostgreSQL, Redis and Kafka too, not only the services.
    #[arg(long)]
    pub infra: bool,
}

/// `scale`.
#[derive(Args, Debug, Clone, Default)]
pub struct ScaleArgs {
    /// Numbers of backends to try (default 1,2).
    #[arg(long, value_delimiter = ',')]
    pub backends: Vec<usize>,
    /// Numbers of event services to try (default 1,2,3).
    #[arg(long, value_delimiter = ',')]
    pub event_services: Vec<usize>,
    /// Rates of each configuration's ramp (default 1000,1500,2000,2500,3000,3500,4000).
    #[arg(long, value_delimiter = ',')]
    pub rates: Vec<f64>,
    /// Seconds per rate (default 10; 3 with --quick).
    #[arg(long)]
    pub step_s: Option<f64>,
    /// Rate of the rebalance run.
    #[arg(long, default_value_t = 1_000.0)]
    pub rebalance_rate: f64,
    /// Seconds between the rebalance run's changes (default 20; 12 with --quick).
    #[arg(long)]
    pub rebalance_every_s: Option<f64>,
    /// Skip the rebalance run.
    #[arg(long)]
    pub no_rebalance: bool,
    /// Skip the ramps: the rebalance run only.
    #[arg(long)]
    pub no_ramps: bool,
}

/// `ramp`.
#[derive(Args, Debug, Clone, Default)]
pub struct RampArgs {
    /// Rates to try, in order (default 500 to 6000 in steps of 500, then 8000).
    #[arg(long, value_delimiter = ',')]
    pub rates: Vec<f64>,
    /// Seconds per rate (default 15; 4 with --quick).
    #[arg(long)]
    pub step_s: Option<f64>,
}

/// `backlog`.
#[derive(Args, Debug, Clone, Default)]
pub struct BacklogArgs {
    /// Outbox rows to fill (default 100 000; 10 000 with --quick).
    #[arg(long)]
    pub rows: Option<u64>,
    /// Fill workers (closed loop).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Stop the event service until the relay has drained the outbox, then
    /// start it: the relay's and the event service's rates each on the whole
    /// machine, instead of both sharing it.
    #[arg(long)]
    pub isolate: bool,
}

/// `overhead`.
#[derive(Args, Debug, Clone, Default)]
pub struct OverheadArgs {
    /// Requests per second to each side.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Send window in seconds (default 60; 15 with --quick).
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Compare span export on and off (OTLP to a sink this run starts)
    /// instead of events on and off.
    #[arg(long)]
    pub traces: bool,
}

/// Closed-loop workers of `max` (and of the HTTP ceiling).
pub const MAX_CONCURRENCY: usize = 64;

/// `max`.
#[derive(Args, Debug, Clone, Default)]
pub struct MaxArgs {
    /// Workers.
    #[arg(long, default_value_t = MAX_CONCURRENCY)]
    pub concurrency: usize,
    /// Seconds (default 30; 10 with --quick).
    #[arg(long)]
    pub duration_s: Option<f64>,
}

/// `ceiling`.
#[derive(Args, Debug, Clone)]
pub struct CeilingArgs {
    /// Batch sizes of the PostgreSQL ceiling (default 1, 8, 32, 128 below
    /// --max-batch, and --max-batch).
    #[arg(long, value_delimiter = ',')]
    pub batch_sizes: Vec<usize>,
    /// Concurrent statements of the PostgreSQL ceiling (the backend runs up
    /// to one per kind of batched statement, four kinds, with its default
    /// BATCH_WRITERS=1).
    #[arg(long = "ceiling-writers", default_value_t = CEILING_WRITERS)]
    pub writers: usize,
    /// The backend's largest batch.
    #[arg(long, env = "BATCH_MAX", default_value_t = DEFAULT_BATCH_MAX)]
    pub max_batch: usize,
    /// Seconds per batch size (default 5; 2 with --quick).
    #[arg(long)]
    pub step_s: Option<f64>,
    /// Records of the Kafka ceiling, per phase (default 100 000; 20 000
    /// with --quick).
    #[arg(long)]
    pub records: Option<u64>,
    /// Workers of the HTTP ceiling (those of `max`).
    #[arg(long, default_value_t = MAX_CONCURRENCY)]
    pub concurrency: usize,
    /// Seconds of the HTTP ceiling (default 10; 4 with --quick).
    #[arg(long)]
    pub http_s: Option<f64>,
    /// The pipeline's sustained rate (events/s) to set against the
    /// ceilings; default: this run's ramp (`all`), else the newest ramp
    /// report under target/bench.
    #[arg(long)]
    pub pipeline_events_per_s: Option<f64>,
    /// Version of the events written and produced (the backend's setting).
    #[arg(long, env = "EVENT_VERSION", default_value_t = EventVersion::V2)]
    pub event_version: EventVersion,
    /// Encoding of the events written and produced (the backend's setting).
    #[arg(long, env = "EVENT_CONTENT_TYPE", default_value_t = ContentType::Json)]
    pub event_content_type: ContentType,
    /// The producer, as the backend's relay builds it.
    #[command(flatten)]
    pub producer: todo_kafka::ProducerArgs,
    /// The consumer, as the event service builds it; the ceiling's group is
    /// `<group id>-ceiling-<run>`, never the service's own.
    #[command(flatten)]
    pub consumer: todo_kafka::ConsumerArgs,
}

impl Default for CeilingArgs {
    fn default() -> Self {
        Self {
            batch_sizes: Vec::new(),
            writers: CEILING_WRITERS,
            max_batch: DEFAULT_BATCH_MAX,
            step_s: None,
            records: None,
            concurrency: MAX_CONCURRENCY,
            http_s: None,
            pipeline_events_per_s: None,
            event_version: EventVersion::V2,
            event_content_type: ContentType::Json,
            producer: Default::default(),
            consumer: Default::default(),
        }
    }
}

/// `load`: keep writes flowing (for failure-injection scripts).
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Requests per second (open loop).
    #[arg(long)]
    pub rate: f64,
    /// Seconds.
    #[arg(long)]
    pub duration_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn ceiling_takes_the_services_kafka_client_settings() {
        let cli = Cli::parse_from(["todo-bench", "ceiling", "--kafka-linger-ms", "5"]);
        let Some(Command::Ceiling(args)) = cli.command else {
            panic!("not ceiling: {:?}", cli.command);
        };
        assert_eq!(args.producer.linger_ms, 5);
        assert!(args
            .consumer
            .typed()
            .contains(&("enable.auto.offset.store", "false".into())));
    }
}
