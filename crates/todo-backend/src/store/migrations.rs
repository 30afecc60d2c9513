//! The schema: the migrations in `migrations/` (scripts and the Helm chart
//! run them from there too), applied at start or by `--migrate-only`
//! (`todo_runtime::db::Migrations`).

use todo_runtime::db::Migrations;

/// The migrations, embedded.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The backend's schema. It migrates its database but never creates it: the
/// database is provisioned (`./dev`, the chart), and a typo in
/// `DATABASE_URL` must not quietly make a new one.
pub static MIGRATIONS: Migrations = Migrations {
    migrator: &MIGRATOR,
    create_database: false,
    url_setting: "DATABASE_URL",
};
