//! A rollback runs an older build over a database a newer build migrated:
//! the older build's migrations must still succeed (on the real PostgreSQL
//! of the local stack).

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{Connection, PgConnection};
use todo_runtime::db::Database;
use todo_testkit::Stack;

static OLDER: Migrator = sqlx::migrate!("tests/migrations/older");
static NEWER: Migrator = sqlx::migrate!("tests/migrations/newer");

#[tokio::test]
async fn an_older_build_starts_on_a_schema_a_newer_build_migrated() {
    let url = Stack::from_env().fresh_database().await.unwrap();
    let db = Database::parse(&url).unwrap();
    db.migrate_once(&NEWER, false).await.unwrap();

    // Without the tolerance, sqlx refuses: the rollback would crash-loop.
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let plain = OLDER.run_direct(&mut conn).await;
    assert!(
        matches!(plain, Err(MigrateError::VersionMissing(2))),
        "{plain:?}"
    );
    conn.close().await.unwrap();

    db.migrate_once(&OLDER, false)
        .await
        .expect("the older build migrates over the newer schema");
    db.expect_migrated_once(&OLDER)
        .await
        .expect("the older build's migrations count as applied");
    // And the newer build still starts after the rollback is undone.
    db.migrate_once(&NEWER, false).await.unwrap();
}
