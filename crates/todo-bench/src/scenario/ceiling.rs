//! `ceiling`: what each component manages alone, measured in one run on the
//! same machine, and the pipeline's sustained rate as a share of the lowest.
//!
//! - PostgreSQL: the backend's create statement
//!   ([`todo_outbox::write::create_tasks`], the one its group commit runs) at
//!   several batch sizes, with `--ceiling-writers` (2) concurrent statements,
//!   and no HTTP. It writes into copies of `tasks` and `outbox` in a scratch
//!   schema (`LIKE … INCLUDING ALL`: the same columns, defaults, identity,
//!   constraints and indexes), dropped afterwards: the running relay never
//!   sees these rows, and `todoctl verify` never counts them.
//! - Kafka: records like the real events (the same encoding, key and
//!   headers) produced and consumed with the services' client settings, on a
//!   scratch topic shaped like the tasks topics, deleted afterwards.
//! - HTTP: the backend's liveness endpoint under the load generator, closed
//!   loop with `max`'s workers.
//!
//! The rest of the stack keeps running (idle) while a ceiling is measured,
//! and this process shares the CPUs too, as in every scenario.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::consumer::{BaseConsumer, Consumer};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use todo_events::{ContentType, Event, EventType, EventVersion, Payload, TaskCreated, TaskStatus};
use todo_kafka::{KafkaArgs, Outgoing, TopicNames, TopicSettings};
use todo_outbox::write::{create_tasks, NewEvent, NewTask};

use super::probes::{cpu_busy_since, wait_quiet};
use super::{keep, Ctx};
use crate::cli::CeilingArgs;
use crate::client::{new_task_title, Api, Target, NEW_TASK_DESCRIPTION};
use crate::error::{Error, Result};
use crate::load::{self, Driver};
use crate::mix::{Mix, Op};
use crate::report::{BatchStep, CeilingRun, HttpCeiling, KafkaCeiling, PostgresCeiling, RampRun};
use crate::sampler::cpu_jiffies;
use crate::stats::{self, LatencySummary};

/// `ceiling`; `ramp` is this run's hold or ramp, if any (`all`), for the pipeline's
/// sustained rate.
pub async fn ceiling(ctx: &Ctx, args: &CeilingArgs, ramp: Option<&RampRun>) -> Result<CeilingRun> {
    if let Some(limit) = ctx.common.quiet_below_pct {
        wait_quiet(limit, Duration::from_secs(ctx.common.quiet_wait_s)).await;
    }
    let mut errors = Vec::new();
    let postgres = keep("postgres ceiling", postgres(ctx, args).await, &mut errors);
    let kafka = keep("kafka ceiling", kafka(ctx, args).await, &mut errors);
    let http = keep("http ceiling", http(ctx, args).await, &mut errors);
    let ceilings = [
        ("postgres", postgres.as_ref().map(|p| p.best_rows_per_s)),
        ("kafka", kafka.as_ref().map(|k| k.end_to_end_per_s)),
        ("http", http.as_ref().map(|h| h.api.achieved_rps)),
    ];
    let lowest = lowest_ceiling(&ceilings);
    let combined = combined_ceiling(&ceilings);
    let (pipeline, pipeline_source) = pipeline_rate(
        args.pipeline_events_per_s,
        ramp,
        Path::new(crate::REPORTS_DIR),
    );
    Ok(CeilingRun {
        pipeline_pct_of_combined: pipeline.zip(combined).map(|(p, c)| pct_of(p, c)),
        combined_per_s: combined,
        pipeline_pct_of_lowest: pipeline
            .zip(lowest.as_ref())
            .map(|(p, (_, low))| pct_of(p, *low)),
        lowest_per_s: lowest.as_ref().map(|(_, v)| *v),
        lowest: lowest.map(|(name, _)| name),
        pipeline_events_per_s: pipeline,
        pipeline_source,
        postgres,
        kafka,
        http,
        errors,
    })
}

/// The lowest measured ceiling (a ceiling of 0 measured nothing).
pub fn lowest_ceiling(ceilings: &[(&str, Option<f64>)]) -> Option<(String, f64)> {
    ceilings
        .iter()
        .filter_map(|(name, v)| v.filter(|v| *v > 0.0).map(|v| (name.to_string(), v)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// What the components allow together when they share the CPUs: a pipeline
/// that did each one's work per event, and nothing else, would spend the sum
/// of their costs per event, so its rate is 1 / (1/a + 1/b + ...). As a share
/// of the lowest ceiling that is 1 / (1 + lowest/b + lowest/c): under 50 %
/// whenever lowest/b + lowest/c > 1, the most a pipeline could reach by the
/// lowest-ceiling measure. `None` unless every ceiling was measured.
pub fn combined_ceiling(ceilings: &[(&str, Option<f64>)]) -> Option<f64> {
    let cost: Option<f64> = ceilings
        .iter()
        .map(|(_, v)| v.filter(|v| *v > 0.0).map(|v| 1.0 / v))
        .sum();
    cost.map(|c| stats::round3(1.0 / c))
}

/// `part` as a percentage of `whole`.
pub fn pct_of(part: f64, whole: f64) -> f64 {
    stats::round3(100.0 * part / whole)
}

// --- PostgreSQL ---------------------------------------------------------------

/// The batch sizes to try: 1, 8, 32 and 128 below the backend's largest
/// batch, and that largest batch.
pub fn default_batch_sizes(max_batch: usize) -> Vec<usize> {
    let max_batch = max_batch.max(1);
    let mut sizes: Vec<usize> = [1, 8, 32, 128]
        .into_iter()
        .filter(|b| *b < max_batch)
        .collect();
    sizes.push(max_batch);
    sizes
}

/// The step that wrote the most rows per second.
pub fn best_step(steps: &[BatchStep]) -> Option<&BatchStep> {
    steps
        .iter()
        .filter(|s| s.rows > 0)
        .max_by(|a, b| a.rows_per_s.total_cmp(&b.rows_per_s))
}

async fn postgres(ctx: &Ctx, args: &CeilingArgs) -> Result<PostgresCeiling> {
    let schema = format!("bench_ceiling_{}", uuid::Uuid::new_v4().simple());
    let copied = scratch_tables(&ctx.backend_db, &schema).await;
    let run = match copied {
        Ok(method) => write_steps(ctx, args, &schema, method).await,
        Err(e) => Err(e),
    };
    // NB: dropped whatever happened above: its rows must never reach a relay.
    let dropped = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&ctx.backend_db)
        .await;
    let run = run?;
    dropped?;
    Ok(run)
}

/// Copies `tasks` and `outbox` (as the connection's search path finds them)
/// into `schema`, and checks that the copies cost what the originals do:
/// the same indexes, and no trigger or foreign key that `LIKE` would leave
/// behind. Returns how, for the report.
async fn scratch_tables(db: &PgPool, schema: &str) -> Result<String> {
    let original: String = sqlx::query_scalar(
        "SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = 'tasks'::regclass",
    )
    .fetch_one(db)
    .await?;
    let mut tx = db.begin().await?;
    for statement in [
        format!("CREATE SCHEMA {schema}"),
        format!("CREATE TABLE {schema}.tasks (LIKE {original}.tasks INCLUDING ALL)"),
        format!("CREATE TABLE {schema}.outbox (LIKE {original}.outbox INCLUDING ALL)"),
    ] {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let indexes = |ns: String| {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename IN ('tasks', 'outbox')",
        )
        .bind(ns)
        .fetch_one(db)
    };
    let (theirs, ours) = (
        indexes(original.clone()).await?,
        indexes(schema.to_owned()).await?,
    );
    let extras: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN ($1::regclass, $2::regclass))
              + (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid IN ($1::regclass, $2::regclass))",
    )
    .bind(format!("{original}.tasks"))
    .bind(format!("{original}.outbox"))
    .fetch_one(db)
    .await?;
    if theirs != ours || extras > 0 {
        return Err(Error::Config(format!(
            "the scratch copies of {original}.tasks and outbox would not cost the same \
             ({ours} indexes against {theirs}; {extras} triggers or foreign keys LIKE does not copy)"
        )));
    }
    Ok(format!(
        "todo_outbox::write::create_tasks (the backend's create statement) into copies of \
         {original}.tasks and {original}.outbox in the scratch schema {schema} (LIKE … INCLUDING ALL: \
         {ours} indexes, as the originals; no triggers or foreign keys), dropped afterwards. \
         The copies start empty; every index is appended to at its end (ascending ids), \
         as on the real tables."
    ))
}

async fn write_steps(
    ctx: &Ctx,
    args: &CeilingArgs,
    schema: &str,
    method: String,
) -> Result<PostgresCeiling> {
    let step_s = args
        .step_s
        .unwrap_or(if ctx.common.quick { 2.0 } else { 5.0 });
    let sizes = if args.batch_sizes.is_empty() {
        default_batch_sizes(args.max_batch)
    } else {
        args.batch_sizes.clone()
    };
    let writers = args.writers.max(1);
    // The backend's pool settings that matter per statement: no ping before
    // a checkout.
    let options =
        PgConnectOptions::from_str(&ctx.common.database_url)?.options([("search_path", schema)]);
    let pool = PgPoolOptions::new()
        .max_connections(writers as u32)
        .test_before_acquire(false)
        .connect_with(options)
        .await?;
    let event = EventTemplate::new(
        args.event_version,
        args.event_content_type,
        &ctx.common.kafka,
    );
    let next_id = Arc::new(AtomicI64::new(1));
    let largest = sizes.iter().copied().max().unwrap_or(1);
    eprintln!("ceiling: PostgreSQL, {writers} writers, batches {sizes:?}, {step_s} s each");
    // Unrecorded: connections, caches and the first WAL segments.
    write_step(&pool, &event, &next_id, writers, largest, step_s.min(2.0)).await?;
    let mut steps = Vec::new();
    for batch in sizes {
        steps.push(write_step(&pool, &event, &next_id, writers, batch.max(1), step_s).await?);
    }
    pool.close().await;
    let best = best_step(&steps).cloned();
    Ok(PostgresCeiling {
        method,
        writers,
        step_s,
        best_batch: best.as_ref().map(|b| b.batch),
        best_rows_per_s: best.map(|b| b.rows_per_s).unwrap_or(0.0),
        steps,
    })
}

/// `writers` writers, each writing `batch` tasks per statement back to back
/// for `seconds`.
async fn write_step(
    pool: &PgPool,
    event: &EventTemplate,
    next_id: &Arc<AtomicI64>,
    writers: usize,
    batch: usize,
    seconds: f64,
) -> Result<BatchStep> {
    let cpu = cpu_jiffies();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut handles = Vec::with_capacity(writers);
    for _ in 0..writers {
        let (pool, next_id) = (pool.clone(), next_id.clone());
        // Encoded once per writer: what PostgreSQL stores does not depend on
        // the bytes (rows below the TOAST threshold, no index on them).
        let mut events: Vec<NewEvent> = (0..batch)
            .map(|i| event.event(i as i64 + 1))
            .collect::<Result<_>>()?;
        handles.push(tokio::spawn(async move {
            let mut latency = stats::histogram();
            let (mut rows, mut statements) = (0u64, 0u64);
            while Instant::now() < deadline {
                let first = next_id.fetch_add(batch as i64, Ordering::Relaxed);
                let ids: Vec<i64> = (first..first + batch as i64).collect();
                let titles: Vec<String> = ids.iter().map(|id| new_task_title(*id as u64)).collect();
                for (e, id) in events.iter_mut().zip(&ids) {
                    e.key = id.to_string();
                }
                let now = chrono::Utc::now();
                let items: Vec<(NewTask<'_>, Option<&NewEvent>)> = ids
                    .iter()
                    .zip(&titles)
                    .zip(&events)
                    .map(|((id, title), e)| (new_task(*id, title, now), Some(e)))
                    .collect();
                let sent = Instant::now();
                rows += create_tasks(&pool, &items).await?;
                stats::record_micros(&mut latency, sent.elapsed().as_micros() as i64);
                statements += 1;
            }
            Ok::<_, Error>((rows, statements, latency))
        }));
    }
    let mut latency = stats::histogram();
    let (mut rows, mut statements) = (0, 0);
    for h in handles {
        let (r, s, l) = h.await.map_err(|e| Error::Process(e.to_string()))??;
        rows += r;
        statements += s;
        latency.add(&l).map_err(|e| Error::Process(e.to_string()))?;
    }
    let took = start.elapsed().as_secs_f64();
    Ok(BatchStep {
        batch,
        statements,
        rows,
        rows_per_s: stats::round3(rows as f64 / took),
        statement: LatencySummary::of(&latency),
        cpu_busy_pct: cpu_busy_since(cpu),
    })
}

/// A task as `POST /tasks` from the load generator creates it.
fn new_task(id: i64, title: &str, now: chrono::DateTime<chrono::Utc>) -> NewTask<'_> {
    NewTask {
        id,
        title,
        description: Some(NEW_TASK_DESCRIPTION),
        status: TaskStatus::Incomplete.as_str(),
        user_id: None,
        created_at: now,
        updated_at: now,
        completed_at: None,
        version: 1,
    }
}

/// `task.created` events as the backend writes them for the load
/// generator's creates.
struct EventTemplate {
    version: EventVersion,
    content_type: ContentType,
    topic: String,
    correlation_id: uuid::Uuid,
}

impl EventTemplate {
    fn new(version: EventVersion, content_type: ContentType, kafka: &KafkaArgs) -> Self {
        Self {
            version,
            content_type,
            topic: TopicNames::new(kafka.topic_prefix.clone()).for_event(EventType::Created),
            correlation_id: uuid::Uuid::new_v4(),
        }
    }

    fn event(&self, task_id: i64) -> Result<NewEvent> {
        let payload = Payload::Created(TaskCreated {
            task_id,
            title: new_task_title(task_id as u64),
            description: Some(NEW_TASK_DESCRIPTION.to_owned()),
            status: TaskStatus::Incomplete,
            created_at: chrono::Utc::now(),
            user_id: None,
            task_version: Some(1),
        });
        let event = Event::new(payload, self.version, self.correlation_id);
        NewEvent::encode(&event, self.content_type, self.topic.clone())
            .map_err(|e| Error::Other(e.into()))
    }
}

// --- Kafka --------------------------------------------------------------------

/// Longest wait for a record's acknowledgement or for the consumer.
const KAFKA_WAIT: Duration = Duration::from_secs(120);

/// Sends in flight at once: as many as the producer's queue takes.
const KAFKA_IN_FLIGHT: usize = 50_000;

async fn kafka(ctx: &Ctx, args: &CeilingArgs) -> Result<KafkaCeiling> {
    let kafka = &ctx.common.kafka;
    let model = TopicNames::new(kafka.topic_prefix.clone()).for_event(EventType::Created);
    let (partitions, replication_factor) = topic_shape(kafka, &model).await?;
    let run = uuid::Uuid::new_v4().simple();
    let topic = format!("{}bench.ceiling.{run}", kafka.topic_prefix);
    let group = format!("{}-ceiling-{run}", args.consumer.group_id);
    let client = kafka.client_config(&[]).map_err(config_error)?;
    todo_kafka::provision_topics(
        &client,
        std::slice::from_ref(&topic),
        &TopicSettings {
            partitions: partitions as i32,
            replication_factor: Some(replication_factor as i32),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| Error::Other(e.into()))?;
    let run = kafka_phases(ctx, args, &topic, &group).await;
    // NB: deleted whatever happened above.
    let admin: AdminClient<todo_kafka::KafkaContext> =
        client.create_with_context(todo_kafka::KafkaContext::quiet())?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let deleted = admin.delete_topics(&[topic.as_str()], &opts).await;
    let _ = admin.delete_groups(&[group.as_str()], &opts).await;
    let mut run = run?;
    deleted?;
    run.partitions = partitions;
    run.replication_factor = replication_factor;
    Ok(run)
}

fn config_error(e: todo_kafka::ConfigError) -> Error {
    Error::Config(e.to_string())
}

/// Partitions and replication factor of `topic`.
async fn topic_shape(kafka: &KafkaArgs, topic: &str) -> Result<(usize, usize)> {
    let cfg = kafka.client_config(&[]).map_err(config_error)?;
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = cfg.create()?;
        let partitions = todo_kafka::topic_partitions(&consumer, &topic, Duration::from_secs(10))?;
        match partitions.first() {
            Some((_, replicas)) => Ok((partitions.len(), (*replicas).max(1))),
            None => Err(Error::Config(format!(
                "topic {topic} not found: start the stack (./dev up) first"
            ))),
        }
    })
    .await
    .map_err(|e| Error::Process(e.to_string()))?
}

/// Produce alone, then consume that backlog, then produce again while the
/// consumer reads.
async fn kafka_phases(
    ctx: &Ctx,
    args: &CeilingArgs,
    topic: &str,
    group: &str,
) -> Result<KafkaCeiling> {
    let n = args
        .records
        .unwrap_or(if ctx.common.quick { 20_000 } else { 100_000 })
        .max(2);
    let kafka = &ctx.common.kafka;
    let template = EventTemplate::new(args.event_version, args.event_content_type, kafka);
    // Distinct events, encoded before the clock starts (the relay sends
    // stored bytes): compression sees what it would see on real events.
    let records: Vec<NewEvent> = (1..=n as i64)
        .map(|id| template.event(id))
        .collect::<Result<_>>()?;
    let record_bytes = records
        .iter()
        .map(|r| {
            r.key.len()
                + r.payload.len()
                + r.headers
                    .0
                    .iter()
                    .map(|[k, v]| k.len() + v.len())
                    .sum::<usize>()
        })
        .sum::<usize>() as f64
        / n as f64;
    let producer = todo_kafka::producer(
        &kafka
            .producer_config(&args.producer)
            .map_err(config_error)?,
    )?;
    eprintln!("ceiling: Kafka, {n} records of {record_bytes:.0} bytes to {topic}");
    // Unrecorded: connections, metadata and the idempotent producer's id.
    let warm = &records[..records.len().min(1_000)];
    produce_all(&producer, topic, warm).await?;
    let warm = warm.len() as u64;

    let produce = produce_all(&producer, topic, &records).await?;

    let consumer_args = todo_kafka::ConsumerArgs {
        group_id: group.to_owned(),
        ..args.consumer.clone()
    };
    let reader = Arc::new(Reader::new(vec![warm + n, warm + 2 * n]));
    let consumer: BaseConsumer<Assignment> = kafka
        .consumer_config(&consumer_args)
        .map_err(config_error)?
        .create_with_context(Assignment(reader.clone()))?;
    consumer.subscribe(&[topic])?;
    let thread = {
        let reader = reader.clone();
        tokio::task::spawn_blocking(move || reader.run(&consumer))
    };
    let phases = async {
        let backlog_read = reader.reached(warm + n).await?;
        let assigned = *reader
            .assigned
            .get()
            .expect("records are read once assigned");
        let consume = backlog_read.duration_since(assigned);

        let cpu = cpu_jiffies();
        let start = Instant::now();
        let produced = produce_all(&producer, topic, &records).await?;
        let read = reader.reached(warm + 2 * n).await?;
        Ok::<_, Error>(KafkaCeiling {
            method: format!(
                "the backend's producer settings ({}) and the event service's consumer settings \
                 (a group of its own, offsets stored per record), {n} task.created records per \
                 phase, {KAFKA_IN_FLIGHT} sends in flight at most, after {warm} unrecorded: \
                 produce alone; then consume that backlog (from the partitions' assignment); \
                 then produce the same records again while the consumer reads",
                producer_summary(&args.producer)
            ),
            topic: topic.to_owned(),
            records: n,
            record_bytes_mean: stats::round3(record_bytes),
            produce_per_s: per_s(n, produce),
            consume_per_s: per_s(warm + n, consume),
            end_to_end_per_s: per_s(n, read.duration_since(start)),
            produce_while_consuming_per_s: per_s(n, produced),
            cpu_busy_pct: cpu_busy_since(cpu),
            ..Default::default()
        })
    }
    .await;
    reader.stop.store(true, Ordering::Relaxed);
    thread.await.map_err(|e| Error::Process(e.to_string()))?;
    phases
}

fn producer_summary(p: &todo_kafka::ProducerArgs) -> String {
    format!(
        "acks={}, idempotence {}, linger {} ms, {}",
        p.acks, p.enable_idempotence, p.linger_ms, p.compression
    )
}

fn per_s(n: u64, took: Duration) -> f64 {
    stats::round3(n as f64 / took.as_secs_f64().max(1e-9))
}

/// Sends every record, many in flight; returns once all are acknowledged.
async fn produce_all(
    producer: &todo_kafka::Producer,
    topic: &str,
    records: &[NewEvent],
) -> Result<Duration> {
    let start = Instant::now();
    let mut sends = futures::stream::iter(records)
        .map(|r| {
            todo_kafka::send(
                producer,
                Outgoing {
                    topic,
                    key: Some(r.key.as_bytes()),
                    value: Some(&r.payload),
                    headers: r
                        .headers
                        .0
                        .iter()
                        .map(|[k, v]| (k.as_str(), Some(v.as_bytes())))
                        .collect(),
                },
                KAFKA_WAIT,
            )
        })
        .buffer_unordered(KAFKA_IN_FLIGHT);
    while let Some(sent) = sends.next().await {
        sent?;
    }
    Ok(start.elapsed())
}

/// The consumer's loop, on a thread of its own: counts records, storing each
/// one's offset as the event service does once it is handled, and notes
/// when counts are reached.
struct Reader {
    count: AtomicU64,
    /// When the group first assigned partitions to the consumer.
    assigned: OnceLock<Instant>,
    marks: Vec<u64>,
    reached: Mutex<Vec<(u64, Instant)>>,
    stop: AtomicBool,
}

impl Reader {
    fn new(marks: Vec<u64>) -> Self {
        Self {
            count: AtomicU64::new(0),
            assigned: OnceLock::new(),
            marks,
            reached: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        }
    }

    fn run(&self, consumer: &BaseConsumer<Assignment>) {
        while !self.stop.load(Ordering::Relaxed) {
            let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let now = Instant::now();
            let _ = consumer.store_offset_from_message(&m);
            let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
            if self.marks.contains(&n) {
                self.reached.lock().expect("reader lock").push((n, now));
            }
        }
    }

    /// When the `n`th record was read (waits for it, at most [`KAFKA_WAIT`]).
    async fn reached(&self, n: u64) -> Result<Instant> {
        let deadline = Instant::now() + KAFKA_WAIT;
        loop {
            let at = self
                .reached
                .lock()
                .expect("reader lock")
                .iter()
                .find(|(m, _)| *m == n)
                .map(|(_, at)| *at);
            if let Some(at) = at {
                return Ok(at);
            }
            if Instant::now() >= deadline {
                return Err(Error::Process(format!(
                    "the consumer read {} of {n} records in {KAFKA_WAIT:?}",
                    self.count.load(Ordering::Relaxed)
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The consumer's context: notes when partitions were first assigned (the
/// backlog is read from then on; joining the group before is not reading).
struct Assignment(Arc<Reader>);

impl rdkafka::ClientContext for Assignment {}

impl rdkafka::consumer::ConsumerContext for Assignment {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &rdkafka::consumer::Rebalance<'_>) {
        if let rdkafka::consumer::Rebalance::Assign(tpl) = rebalance {
            if tpl.count() > 0 {
                let _ = self.0.assigned.set(Instant::now());
            }
        }
    }
}

// --- HTTP ---------------------------------------------------------------------

async fn http(ctx: &Ctx, args: &CeilingArgs) -> Result<HttpCeiling> {
    let seconds = args
        .http_s
        .unwrap_or(if ctx.common.quick { 4.0 } else { 10.0 });
    let api = Api::new(
        uuid::Uuid::new_v4(),
        Duration::from_millis(ctx.common.timeout_ms),
    );
    let target = Arc::new(Target::new("health", &ctx.common.backend_url));
    let endpoint = format!("GET {}/health", target.base_url);
    let driver = Driver::new(api, vec![target], Mix::only(Op::Health));
    eprintln!(
        "ceiling: HTTP, {endpoint}, {} workers, {seconds} s",
        args.concurrency
    );
    // Unrecorded: the connections.
    load::closed_run(&driver, args.concurrency, Duration::from_secs(1)).await?;
    let cpu = cpu_jiffies();
    let (recorders, window) =
        load::closed_run(&driver, args.concurrency, Duration::from_secs_f64(seconds)).await?;
    let api = recorders[0].report(window);
    if api.ok == 0 {
        return Err(Error::Process(format!(
            "no answer from {endpoint}: {:?}",
            api.statuses
        )));
    }
    Ok(HttpCeiling {
        endpoint,
        concurrency: args.concurrency,
        duration_s: seconds,
        api,
        cpu_busy_pct: cpu_busy_since(cpu),
    })
}

// --- The pipeline -------------------------------------------------------------

/// The pipeline's sustained events per second, and where it comes from: the
/// option, else this run's ramp, else the newest ramp report under `reports`.
pub fn pipeline_rate(
    option: Option<f64>,
    ramp: Option<&RampRun>,
    reports: &Path,
) -> (Option<f64>, String) {
    if let Some(v) = option {
        return (Some(v), "--pipeline-events-per-s".into());
    }
    if let Some(r) = ramp {
        return match r.highest_bounded_rate {
            Some(rate) => (
                Some(r.highest_sustained_events_per_s),
                format!(
                    "this run's ramp of {:.0} s steps: events processed/s in its highest bounded step ({rate} req/s)",
                    r.step_s
                ),
            ),
            None => (None, "this run's ramp had no bounded step".into()),
        };
    }
    let found = std::fs::read_dir(reports)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|d| {
            let path = d.path().join("report.json");
            let text = std::fs::read_to_string(&path).ok()?;
            Some((
                path.display().to_string(),
                serde_json::from_str(&text).ok()?,
            ))
        });
    match newest_ramp(found) {
        Some((v, source)) => (Some(v), source),
        None => (
            None,
            format!(
                "no ramp in this run nor under {}: run `ramp` first or pass --pipeline-events-per-s",
                reports.display()
            ),
        ),
    }
}

/// Of `(path, report.json)` pairs, the newest report whose ramp had a
/// bounded step: its sustained events per second, and a description.
pub fn newest_ramp(
    reports: impl Iterator<Item = (String, serde_json::Value)>,
) -> Option<(f64, String)> {
    reports
        .filter_map(|(path, v)| {
            let started: chrono::DateTime<chrono::Utc> =
                v.get("started_at")?.as_str()?.parse().ok()?;
            let ramp = v.get("ramp")?;
            let rate = ramp.get("highest_bounded_rate")?.as_f64()?;
            let sustained = ramp.get("highest_sustained_events_per_s")?.as_f64()?;
            Some((started, sustained, rate, path))
        })
        .max_by_key(|(started, ..)| *started)
        .map(|(started, sustained, rate, path)| {
            (
                sustained,
                format!(
                    "{path} (ramp of {}: events processed/s in its highest bounded step, {rate} req/s)",
                    started.format("%Y-%m-%d %H:%M UTC")
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(batch: usize, rows_per_s: f64) -> BatchStep {
        BatchStep {
            batch,
            rows: 1,
            rows_per_s,
            ..Default::default()
        }
    }

    #[test]
    fn batch_sizes_run_up_to_the_backends_largest_batch() {
        assert_eq!(default_batch_sizes(64), [1, 8, 32, 64]);
        assert_eq!(default_batch_sizes(500), [1, 8, 32, 128, 500]);
        assert_eq!(default_batch_sizes(8), [1, 8]);
        assert_eq!(default_batch_sizes(0), [1]);
    }

    #[test]
    fn the_best_batch_is_the_one_with_the_most_rows_per_second() {
        let steps = [step(1, 900.0), step(8, 7_000.0), step(64, 6_500.0)];
        assert_eq!(best_step(&steps).map(|s| s.batch), Some(8));
        assert!(best_step(&[]).is_none());
    }

    #[test]
    fn the_lowest_ceiling_ignores_what_was_not_measured() {
        let lowest = lowest_ceiling(&[
            ("postgres", Some(20_000.0)),
            ("kafka", None),
            ("http", Some(9_000.0)),
        ]);
        assert_eq!(lowest, Some(("http".to_owned(), 9_000.0)));
        assert_eq!(
            lowest_ceiling(&[("kafka", Some(0.0)), ("http", None)]),
            None
        );
        assert_eq!(pct_of(3_000.0, 9_000.0), 33.333);
    }

    #[test]
    fn the_combined_ceiling_adds_the_costs_and_needs_every_ceiling() {
        let combined = combined_ceiling(&[
            ("postgres", Some(30_000.0)),
            ("kafka", Some(60_000.0)),
            ("http", Some(20_000.0)),
        ]);
        // 1/30 000 + 1/60 000 + 1/20 000 = 6/60 000: 10 000 a second.
        assert_eq!(combined, Some(10_000.0));
        assert_eq!(
            combined_ceiling(&[("postgres", Some(30_000.0)), ("kafka", None)]),
            None
        );
        assert_eq!(
            combined_ceiling(&[("postgres", Some(30_000.0)), ("http", Some(0.0))]),
            None
        );
    }

    #[test]
    fn the_pipeline_rate_comes_from_the_option_before_this_runs_ramp() {
        let ramp = RampRun {
            highest_bounded_rate: Some(3_000.0),
            highest_sustained_events_per_s: 2_983.0,
            ..Default::default()
        };
        let nowhere = Path::new("/nonexistent");
        assert_eq!(pipeline_rate(Some(1.0), Some(&ramp), nowhere).0, Some(1.0));
        let (v, source) = pipeline_rate(None, Some(&ramp), nowhere);
        assert_eq!(v, Some(2_983.0));
        assert!(source.contains("this run's ramp"), "{source}");
        let unbounded = RampRun::default();
        assert_eq!(pipeline_rate(None, Some(&unbounded), nowhere).0, None);
        let (v, source) = pipeline_rate(None, None, nowhere);
        assert_eq!(v, None);
        assert!(source.contains("--pipeline-events-per-s"), "{source}");
    }

    #[test]
    fn the_newest_report_with_a_bounded_ramp_step_gives_the_pipeline_rate() {
        let report = |started: &str, ramp: serde_json::Value| serde_json::json!({"started_at": started, "ramp": ramp});
        let bounded = |sustained: f64| serde_json::json!({"highest_bounded_rate": 3000.0, "highest_sustained_events_per_s": sustained});
        let reports = vec![
            (
                "old".to_owned(),
                report("2026-11-30T22:01:00Z", bounded(2_900.0)),
            ),
            (
                "new".to_owned(),
                report("2026-12-01T10:00:00Z", bounded(3_100.0)),
            ),
            (
                "newer, no bounded step".to_owned(),
                report(
                    "2026-12-02T10:00:00Z",
                    serde_json::json!({"highest_bounded_rate": null, "highest_sustained_events_per_s": 0.0}),
                ),
            ),
            (
                "newest, no ramp".to_owned(),
                serde_json::json!({"started_at": "2026-12-03T10:00:00Z", "ramp": null}),
            ),
        ];
        let (v, source) = newest_ramp(reports.into_iter()).unwrap();
        assert_eq!(v, 3_100.0);
        assert!(source.starts_with("new ("), "{source}");
        assert!(newest_ramp(std::iter::empty()).is_none());
    }
}
