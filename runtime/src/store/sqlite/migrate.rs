//! The SQLite schema: its migrations, applied on open under the database's write lock.

use sqlx::SqlitePool;
use sqlx::pool::PoolConnection;

use crate::store::OpenError;
use crate::store::sql::{Migration, MigrationTable, Refused, migrate as run};

/// Migration `$version`, from its file in `runtime/migrations/sqlite/`.
macro_rules! migration {
    ($version:literal, $description:literal, $file:literal) => {
        Migration::new(
            $version,
            $description,
            include_str!(concat!("../../../migrations/sqlite/", $file)),
        )
    };
}

/// Versioned schema migrations, applied in order on open and recorded in `annals_schema`.
const MIGRATIONS: &[Migration] = &[
    migration!(1, "events", "0001_events.sql"),
    migration!(2, "snapshots", "0002_snapshots.sql"),
    migration!(3, "no replace", "0003_no_replace.sql"),
    migration!(4, "projections", "0004_projections.sql"),
];

/// Creates or upgrades the schema.
pub(super) async fn migrate(pool: &SqlitePool) -> Result<(), OpenError> {
    let error = |source: sqlx::Error| OpenError::refused("SQLite", Refused::Sql(source));
    let mut conn = pool.acquire().await.map_err(error)?;
    // IMMEDIATE takes the write lock first, so two processes opening a new file at once
    // apply each migration exactly once.
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .map_err(error)?;
    let result = apply(&mut conn).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = sqlx::query(end).execute(&mut *conn).await;
    result
        .and(ended.map(drop).map_err(Refused::Sql))
        .map_err(|refused| OpenError::refused("SQLite", refused))
}

async fn apply(conn: &mut PoolConnection<sqlx::Sqlite>) -> Result<(), Refused> {
    let table = MigrationTable {
        create: "CREATE TABLE IF NOT EXISTS annals_schema (version INTEGER PRIMARY KEY, \
                 description TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            .to_owned(),
        applied: "SELECT COALESCE(MAX(version), 0) FROM annals_schema".to_owned(),
        // Microseconds since 1970, as every time of this store.
        record: "INSERT INTO annals_schema (version, description, applied_at) \
                 VALUES (?, ?, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))"
            .to_owned(),
    };
    run(&mut **conn, "SQLite", &table, MIGRATIONS, str::to_owned).await
}

crate::store::sql::migration_connection!(sqlx::SqliteConnection);
