//! Where the notifier remembers what it sent: Redis (the spec's choice, `SET NX`
//! with an expiry) or Postgres (a table with the same semantics), selected by
//! `WEBHOOK_DEDUP_STORE`. Both hold, per key, a short claim while a notification
//! is in flight and a long-lived `done` mark once it was delivered; an expired
//! entry is as good as none.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use sqlx::PgPool;

/// What a claim attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours: send the notification.
    Claimed,
    /// Sent before: nothing to do.
    Done,
    /// Someone else is sending it (or crashed while sending; the claim expires).
    Busy,
}

/// The store is unreachable or refused the command: wait and retry.
#[derive(Debug, thiserror::Error)]
#[error("{store} unavailable: {message}")]
pub struct StoreDown {
    /// `redis` or `postgres` (the metrics label).
    pub store: &'static str,
    /// The client's error.
    pub message: String,
}

/// A deduplication store.
#[derive(Clone)]
pub enum DedupStore {
    /// Redis: `SET key pending NX PX claim`, `SET key done EX ttl`, `DEL key`.
    Redis(ConnectionManager),
    /// Postgres: table `webhook_dedup`.
    Postgres(PgPool),
}

fn redis_down(e: redis::RedisError) -> StoreDown {
    StoreDown {
        store: "redis",
        message: e.to_string(),
    }
}

fn pg_down(e: sqlx::Error) -> StoreDown {
    StoreDown {
        store: "postgres",
        message: e.to_string(),
    }
}

impl DedupStore {
    /// Redis at `url`, connected lazily (it may be down at start).
    pub fn redis(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        Ok(Self::Redis(ConnectionManager::new_lazy_with_config(
            client, cfg,
        )?))
    }

    /// The store's name (the metrics label).
    pub fn name(&self) -> &'static str {
        match self {
            DedupStore::Redis(_) => "redis",
            DedupStore::Postgres(_) => "postgres",
        }
    }

    /// Claims `key` for `claim` on behalf of `owner` unless it is done or
    /// claimed by another owner. A claim of `owner`'s own counts as claimed:
    /// its earlier attempt wrote the claim, but the answer was lost (the store
    /// went down mid-request), and it must not wait for its own claim to expire.
    pub async fn claim(&self, key: &str, claim: Duration, owner: &str) -> Result<Claim, StoreDown> {
        match self {
            DedupStore::Redis(conn) => {
                let mut conn = conn.clone();
                let pending = format!("pending:{owner}");
                let claimed: Option<String> = redis::cmd("SET")
                    .arg(key)
                    .arg(&pending)
                    .arg("NX")
                    .arg("PX")
                    .arg(claim.as_millis() as u64)
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_down)?;
                if claimed.is_some() {
                    return Ok(Claim::Claimed);
                }
                let state: Option<String> = conn.get(key).await.map_err(redis_down)?;
                Ok(match state.as_deref() {
                    Some("done") => Claim::Done,
                    Some(s) if s == pending => Claim::Claimed,
                    _ => Claim::Busy,
                })
            }
            DedupStore::Postgres(pool) => {
                let claimed: Option<bool> = sqlx::query_scalar(
                    "INSERT INTO webhook_dedup (key, state, expires_at, owner)
                     VALUES ($1, 'pending', now() + make_interval(secs => $2), $3)
                     ON CONFLICT (key) DO UPDATE
                         SET state = 'pending', expires_at = EXCLUDED.expires_at, owner = EXCLUDED.owner
                         WHERE webhook_dedup.expires_at < now()
                            OR (webhook_dedup.state = 'pending' AND webhook_dedup.owner = EXCLUDED.owner)
                     RETURNING true",
                )
                .bind(key)
                .bind(claim.as_secs_f64())
                .bind(owner)
                .fetch_optional(pool)
                .await
                .map_err(pg_down)?;
                if claimed.is_some() {
                    return Ok(Claim::Claimed);
                }
                let state: Option<String> = sqlx::query_scalar(
                    "SELECT state FROM webhook_dedup WHERE key = $1 AND expires_at >= now()",
                )
                .bind(key)
                .fetch_optional(pool)
                .await
                .map_err(pg_down)?;
                Ok(if state.as_deref() == Some("done") {
                    Claim::Done
                } else {
                    Claim::Busy
                })
            }
        }
    }

    /// Marks `key` as delivered for `ttl`.
    pub async fn mark_done(&self, key: &str, ttl: Duration) -> Result<(), StoreDown> {
        match self {
            DedupStore::Redis(conn) => {
                let mut conn = conn.clone();
                conn.set_ex::<_, _, ()>(key, "done", ttl.as_secs().max(1))
                    .await
                    .map_err(redis_down)
            }
            DedupStore::Postgres(pool) => sqlx::query(
                "INSERT INTO webhook_dedup (key, state, expires_at)
                 VALUES ($1, 'done', now() + make_interval(secs => $2))
                 ON CONFLICT (key) DO UPDATE SET state = 'done', expires_at = EXCLUDED.expires_at",
            )
            .bind(key)
            .bind(ttl.as_secs_f64())
            .execute(pool)
            .await
            .map(|_| ())
            .map_err(pg_down),
        }
    }

    /// Frees a claim (best effort: a claim also expires on its own).
    pub async fn release(&self, key: &str) -> Result<(), StoreDown> {
        match self {
            DedupStore::Redis(conn) => {
                let mut conn = conn.clone();
                conn.del::<_, ()>(key).await.map_err(redis_down)
            }
            DedupStore::Postgres(pool) => {
                sqlx::query("DELETE FROM webhook_dedup WHERE key = $1 AND state = 'pending'")
                    .bind(key)
                    .execute(pool)
                    .await
                    .map(|_| ())
                    .map_err(pg_down)
            }
        }
    }
}
