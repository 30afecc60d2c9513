//! The event store's schema: the migrations in `migrations/`, applied at
//! start or by `--migrate-only` (`todo_runtime::db::Migrations`).

use todo_runtime::db::Migrations;

/// The migrations, embedded.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The event store's schema. The service creates its database when it is
/// missing: it owns it alone, and a fresh deployment needs no step for it.
pub static MIGRATIONS: Migrations = Migrations {
    migrator: &MIGRATOR,
    create_database: true,
    url_setting: "EVENT_DATABASE_URL",
};
