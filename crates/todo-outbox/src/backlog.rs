//! What is waiting to be published: the outbox gauges, the bench's sampler,
//! `todoctl verify`.

use sqlx::PgPool;

/// The unpublished rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backlog {
    /// How many.
    pub depth: i64,
    /// Age of the oldest, in seconds (0 when there is none).
    pub oldest_age_seconds: f64,
}

/// How many rows wait and how long the oldest has waited.
pub async fn backlog(pool: &PgPool) -> Result<Backlog, sqlx::Error> {
    let (depth, age): (i64, Option<f64>) = sqlx::query_as(
        "SELECT count(*), extract(epoch FROM now() - min(created_at))::float8
         FROM outbox WHERE published_at IS NULL",
    )
    .fetch_one(pool)
    .await?;
    Ok(Backlog {
        depth,
        oldest_age_seconds: age.unwrap_or(0.0),
    })
}

/// How many rows wait to be published.
pub async fn unpublished_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
}
