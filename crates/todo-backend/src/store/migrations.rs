//! The schema: the migrations in `migrations/` (scripts and the Helm chart
//! run them from there too), applied at start or by `--migrate-only`.

use anyhow::Context;
use todo_runtime::db::{Database, Schema};

/// The migrations, embedded.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The backend migrates its database but never creates it: the database is
/// provisioned (`./dev`, the chart), and a typo in `DATABASE_URL` must not
/// quietly make a new one.
const CREATE_DATABASE: bool = false;

/// What the backend does with the schema at start: migrate it, or, with
/// `skip_migrations`, wait for a `--migrate-only` run to have done so.
pub fn at_start(skip_migrations: bool) -> Schema {
    if skip_migrations {
        Schema::Expect
    } else {
        Schema::Migrate {
            create: CREATE_DATABASE,
        }
    }
}

/// `--migrate-only`: runs the migrations on `database_url`, waiting for the
/// database while it is unreachable, and returns.
pub async fn migrate(database_url: &str) -> anyhow::Result<()> {
    Database::parse(database_url)
        .context("DATABASE_URL")?
        .migrate(&MIGRATOR, CREATE_DATABASE)
        .await
}
