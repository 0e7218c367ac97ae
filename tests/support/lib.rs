//! Shared helpers for the integration tests: the conformance suite and its fixtures.

pub mod conformance;
pub mod domain;

use std::path::{Path, PathBuf};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory under the system temp dir.
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store under test together with whatever must live as long as it (a temp dir, a schema).
pub struct Fixture<S> {
    pub store: S,
    pub _guard: Box<dyn std::any::Any + Send>,
}

impl<S> Fixture<S> {
    pub fn new(store: S, guard: impl std::any::Any + Send) -> Self {
        Self {
            store,
            _guard: Box::new(guard),
        }
    }
}

/// A fresh in-memory store.
pub async fn memory() -> Fixture<annals::MemoryStore> {
    Fixture::new(annals::MemoryStore::new(), ())
}

/// A fresh SQLite store in a database file of its own.
pub async fn sqlite_file() -> Fixture<annals::SqliteStore> {
    let dir = TempDir::new("annals-test");
    let store = annals::SqliteStore::open(dir.path().join("events.db"))
        .await
        .expect("open sqlite");
    Fixture::new(store, dir)
}

/// A fresh in-memory SQLite store.
pub async fn sqlite_memory() -> Fixture<annals::SqliteStore> {
    Fixture::new(
        annals::SqliteStore::in_memory().await.expect("open sqlite"),
        (),
    )
}

/// The PostgreSQL server the tests use: `DATABASE_URL`, or the local default.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Drops a test's schema when the test ends.
pub struct SchemaGuard {
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        // Drop runs outside any async context: a short-lived runtime on its own thread.
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&database_url()).await {
                    let _ = sqlx::query(&sql).execute(&mut conn).await;
                }
            });
            Ok::<(), std::io::Error>(())
        })
        .join();
    }
}

/// A fresh PostgreSQL store in a schema of its own, dropped after the test.
///
/// Panics with instructions when no server answers: PostgreSQL tests never skip.
pub async fn postgres() -> Fixture<annals::PostgresStore> {
    postgres_with(|options| options).await
}

/// [`postgres`] with options of the test's choosing.
pub async fn postgres_with(
    configure: impl FnOnce(annals::PostgresOptions) -> annals::PostgresOptions,
) -> Fixture<annals::PostgresStore> {
    let schema = format!("annals_t_{}", uuid::Uuid::now_v7().simple());
    let options = annals::PostgresOptions::new(database_url())
        .schema(schema.clone())
        .max_connections(8);
    match annals::PostgresStore::connect_with(configure(options)).await {
        Ok(store) => Fixture::new(store, SchemaGuard { schema }),
        Err(e) => panic!("PostgreSQL tests need a server: {e}"),
    }
}

/// Instantiates every conformance check as a `#[tokio::test]` for one backend.
///
/// `$fixture` is an async function returning a fresh [`Fixture`] for each test.
#[macro_export]
macro_rules! conformance_suite {
    ($backend:ident, $fixture:path) => {
        mod $backend {
            $crate::conformance_suite!(@tests $fixture;
                append_and_read_round_trip_with_metadata,
                expected_version_rules,
                failed_batch_writes_nothing,
                appending_stored_event_ids_is_idempotent,
                read_stream_ranges,
                read_all_in_global_order_with_limits,
                hostile_strings_round_trip,
                one_megabyte_payload,
                invalid_input_is_rejected,
                undecodable_events_name_stream_and_position,
                old_event_versions_load_through_upcasters,
                command_metadata_flows_to_events,
                temporal_queries_and_history,
                concurrent_commands_on_one_stream,
                concurrent_cached_commands_on_one_stream,
                concurrent_appends_settle_each_on_its_own,
                cached_aggregates_catch_up_with_other_writers,
                creating_commands_bet_on_a_new_stream,
                fold_stream_matches_read_stream,
                fold_all_matches_read_all,
                subscriptions_catch_up_then_go_live,
                large_batches_are_atomic,
                snapshots_are_taken_and_used,
                missing_snapshot_falls_back_and_is_written,
                corrupt_snapshot_falls_back_and_is_rewritten,
                snapshot_of_another_fingerprint_is_ignored,
                snapshot_ahead_of_the_stream_is_ignored,
                temporal_queries_use_only_older_snapshots,
            );
        }
    };
    (@tests $fixture:path; $($check:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let fixture = $fixture().await;
                $crate::conformance::$check(fixture.store.clone()).await;
            }
        )*
    };
}
