//! The migration runner: a backend's numbered schema files, applied in order, each once,
//! and recorded in its `annals_schema` table.

use futures_core::future::BoxFuture;

/// One numbered schema change of a backend.
pub(crate) struct Migration {
    /// Its number; migrations apply in this order.
    pub version: i64,
    /// What it does, as recorded.
    pub description: &'static str,
    /// Its SQL, before [`migrate`]'s `prepare` fills in names.
    pub sql: &'static str,
}

impl Migration {
    /// Migration number `version`.
    pub(crate) const fn new(version: i64, description: &'static str, sql: &'static str) -> Self {
        Self {
            version,
            description,
            sql,
        }
    }
}

/// A backend's record of applied migrations, as statements with its names filled in.
pub(crate) struct MigrationTable {
    /// Creates the table if it is missing.
    pub create: String,
    /// The highest version applied, 0 when none is.
    pub applied: String,
    /// Records one applied migration, binding its version and description.
    pub record: String,
}

/// Why a schema could not be brought up to date.
pub(crate) enum Refused {
    /// The database failed.
    Sql(sqlx::Error),
    /// The schema is at a version this code does not know: a newer release migrated it.
    TooNew {
        /// The highest version recorded.
        found: i64,
        /// The highest version this code knows.
        known: i64,
    },
}

impl From<sqlx::Error> for Refused {
    fn from(error: sqlx::Error) -> Self {
        Self::Sql(error)
    }
}

/// A connection a migration runs on. Implemented for each backend's connection with
/// boxed futures: a runner generic over sqlx's executors would make every future that
/// opens a store impossible to spawn ("implementation of `Executor` is not general
/// enough").
pub(crate) trait MigrationConnection: Send {
    /// Runs `sql`, which may hold several statements.
    fn run<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<(), sqlx::Error>>;
    /// The one integer `sql` returns.
    fn integer<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<i64, sqlx::Error>>;
    /// Runs `sql` with a version and a description bound.
    fn record<'a>(
        &'a mut self,
        sql: &'a str,
        version: i64,
        description: &'static str,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>>;
}

/// Implements [`MigrationConnection`] for a backend's connection type: the same calls on
/// each, each in a future boxed per backend.
macro_rules! migration_connection {
    ($conn:ty) => {
        impl $crate::store::sql::MigrationConnection for $conn {
            fn run<'a>(
                &'a mut self,
                sql: &'a str,
            ) -> ::futures_core::future::BoxFuture<'a, Result<(), sqlx::Error>> {
                // Through `Executor::execute`, whose future is a concrete box:
                // `RawSql::execute`'s generic one would not prove `Send` for every lifetime.
                Box::pin(async move {
                    sqlx::Executor::execute(self, sqlx::raw_sql(sql))
                        .await
                        .map(drop)
                })
            }

            fn integer<'a>(
                &'a mut self,
                sql: &'a str,
            ) -> ::futures_core::future::BoxFuture<'a, Result<i64, sqlx::Error>> {
                Box::pin(async move { sqlx::query_scalar(sql).fetch_one(self).await })
            }

            fn record<'a>(
                &'a mut self,
                sql: &'a str,
                version: i64,
                description: &'static str,
            ) -> ::futures_core::future::BoxFuture<'a, Result<(), sqlx::Error>> {
                Box::pin(async move {
                    sqlx::query(sql)
                        .bind(version)
                        .bind(description)
                        .execute(self)
                        .await
                        .map(drop)
                })
            }
        }
    };
}
pub(crate) use migration_connection;

/// Applies every migration above the highest one recorded, in order, on `conn`. The caller
/// holds `conn` in a transaction that keeps concurrent runners out (a write lock, an
/// advisory lock), so each migration applies exactly once. A schema recorded at a version
/// above every migration here was written by a newer release, whose tables this code may
/// misread: it is refused, and nothing is changed.
pub(crate) async fn migrate(
    conn: &mut impl MigrationConnection,
    backend: &'static str,
    table: &MigrationTable,
    migrations: &[Migration],
    prepare: impl Fn(&str) -> String,
) -> Result<(), Refused> {
    conn.run(&table.create).await?;
    let applied = conn.integer(&table.applied).await?;
    let known = migrations.iter().map(|m| m.version).max().unwrap_or(0);
    if applied > known {
        return Err(Refused::TooNew {
            found: applied,
            known,
        });
    }
    for migration in migrations.iter().filter(|m| m.version > applied) {
        tracing::info!(
            version = migration.version,
            description = migration.description,
            backend,
            "applying annals migration"
        );
        conn.run(&prepare(migration.sql)).await?;
        conn.record(&table.record, migration.version, migration.description)
            .await?;
    }
    Ok(())
}
