//! The PostgreSQL schema: its migrations, applied on connect in one transaction under an
//! advisory lock. Not sqlx's migrator, whose `_sqlx_migrations` table would be shared
//! with, and rejected by, the application's own sqlx migrations.

use sqlx::PgPool;

use super::statements::channel;
use crate::store::OpenError;
use crate::store::sql::{Migration, MigrationTable, Refused, migrate as run};

/// Migration `$version`, from its file in `runtime/migrations/postgres/`.
macro_rules! migration {
    ($version:literal, $description:literal, $file:literal) => {
        Migration::new(
            $version,
            $description,
            include_str!(concat!("../../../migrations/postgres/", $file)),
        )
    };
}

/// Versioned schema migrations, applied in order on connect and recorded in
/// `annals_schema`. `{schema}` and `{channel}` in their text are filled in per store.
const MIGRATIONS: &[Migration] = &[
    migration!(1, "events", "0001_events.sql"),
    migration!(2, "snapshots", "0002_snapshots.sql"),
    migration!(3, "notify after commit", "0003_notify_after_commit.sql"),
    migration!(4, "json columns", "0004_json_columns.sql"),
    migration!(5, "global order key", "0005_global_order_key.sql"),
    migration!(6, "cluster", "0006_cluster.sql"),
    migration!(7, "projections", "0007_projections.sql"),
    migration!(8, "projection shards", "0008_projection_shards.sql"),
];

/// Creates or upgrades the schema `schema` (a validated identifier). Concurrent first
/// connections apply each migration exactly once: the advisory lock keyed by the schema
/// lets one transaction in at a time.
pub(super) async fn migrate(pool: &PgPool, schema: &str) -> Result<(), OpenError> {
    let quoted = format!("\"{schema}\"");
    let table = MigrationTable {
        create: format!(
            "CREATE SCHEMA IF NOT EXISTS {quoted}; \
             CREATE TABLE IF NOT EXISTS {quoted}.annals_schema (version bigint PRIMARY KEY, \
             description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        ),
        applied: format!("SELECT COALESCE(MAX(version), 0) FROM {quoted}.annals_schema"),
        record: format!(
            "INSERT INTO {quoted}.annals_schema (version, description) VALUES ($1, $2)"
        ),
    };
    let channel = format!("'{}'", channel(schema));
    let prepare = |sql: &str| {
        sql.replace("{schema}", &quoted)
            .replace("{channel}", &channel)
    };
    let mut tx = pool
        .begin()
        .await
        .map_err(|e| OpenError::refused("PostgreSQL", Refused::Sql(e)))?;
    let applied = async {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('annals.migrate.' || $1))")
            .bind(schema)
            .execute(&mut *tx)
            .await?;
        run(&mut *tx, "PostgreSQL", &table, MIGRATIONS, prepare).await
    }
    .await;
    // A failed run ends its transaction here rather than when the connection is next used:
    // until then the transaction would hold its locks on the schema.
    let ended = match applied {
        Ok(()) => tx.commit().await.map_err(Refused::Sql),
        Err(refused) => {
            let _ = tx.rollback().await;
            Err(refused)
        }
    };
    ended.map_err(|refused| OpenError::refused("PostgreSQL", refused))
}

crate::store::sql::migration_connection!(sqlx::PgConnection);
