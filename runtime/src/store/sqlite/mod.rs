//! The embedded SQLite store: no server, one file (or memory).

mod append;
mod dead_letters;
mod dialect;
mod migrate;
mod projection_sql;
mod projections;
mod raw;
mod read;
mod session;
mod snapshot;
mod statements;
mod tables;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::watch;

use crate::projection::InlineSet;
use crate::store::group::Coalescer;
use crate::store::{EventStore, OpenError, StoreError};

pub use session::SqliteSession;

/// An event store in a SQLite database: the embedded default, with no server to run.
///
/// Opening creates the file and the schema when missing. Writes go through one connection
/// (SQLite has one writer at a time anyway), reads through a pool, in WAL mode so readers
/// never wait for the writer.
///
/// ```
/// use annals::SqliteStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), annals::StoreError> {
/// let dir = std::env::temp_dir().join(format!("annals-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).ok();
/// let store = SqliteStore::open(dir.join("bank.db")).await?;
/// let tests = SqliteStore::in_memory().await?;
/// # drop((store, tests)); std::fs::remove_dir_all(dir).ok();
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
    appended: Arc<watch::Sender<u64>>,
    /// Group commit on the one writer connection.
    group: Arc<Coalescer<append::GroupRequest>>,
    /// The projections applied inside each append.
    inline: InlineSet,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        Self::with_options(durable(options), false).await
    }

    /// Connects with a SQLite URL such as `sqlite://bank.db` or `sqlite::memory:`. A file
    /// gets the same settings as with [`open`](Self::open): the store behaves the same
    /// whichever way it is opened.
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| file_error(url, e))?
            .create_if_missing(true);
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = if memory { options } else { durable(options) };
        Self::with_options(options, memory).await
    }

    /// A private in-memory database, gone when the last clone of the store is dropped.
    pub async fn in_memory() -> Result<Self, OpenError> {
        Self::with_options(SqliteConnectOptions::new().in_memory(true), true).await
    }

    /// Opens with full control over the connection options. An in-memory database lives in
    /// one connection, so `memory` makes reads and writes share it.
    pub async fn with_options(
        options: SqliteConnectOptions,
        memory: bool,
    ) -> Result<Self, OpenError> {
        let path = options.get_filename().display().to_string();
        let writer = patiently(|| {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(if memory { 1 } else { 0 })
                // A memory database dies with its connection: never let the pool retire it.
                .idle_timeout(None)
                .max_lifetime(None)
                .test_before_acquire(false)
                .connect_with(options.clone())
        })
        .await
        .map_err(|e| file_error(&path, e))?;
        migrate::migrate(&writer).await?;
        let reader = if memory {
            writer.clone()
        } else {
            let options = options.read_only(true);
            patiently(|| {
                SqlitePoolOptions::new()
                    .max_connections(4)
                    .test_before_acquire(false)
                    .connect_with(options.clone())
            })
            .await
            .map_err(|e| file_error(&path, e))?
        };
        Ok(Self {
            reader,
            writer,
            appended: Arc::new(watch::channel(0).0),
            group: Arc::new(Coalescer::new(1, append::GROUP_MAX_EVENTS)),
            inline: InlineSet::default(),
        })
    }

    /// A pool of read-only connections to the database, for queries of your own, such as
    /// the tables of SQL projections. (An in-memory database has one connection, shared
    /// with the store's writes.)
    pub fn pool(&self) -> &SqlitePool {
        &self.reader
    }

    /// Closes every connection, waiting for running queries.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

impl SqliteStore {
    /// Wakes this process's subscribers after an append.
    fn announce(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The settings of a database file: WAL, so readers never wait for the writer; a commit
/// synced to disk (the log is the source of truth: a commit must survive a power cut);
/// foreign keys. Writers of other processes are waited for up to the busy timeout (sqlx's
/// default, 5 s) before an append fails with `StoreError::Busy`.
fn durable(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
}

/// How long opening a file keeps trying while another process holds it.
const OPEN_PATIENCE: Duration = Duration::from_secs(10);

/// Connects, again after a short pause while another process holds the file: opening a new
/// file sets WAL mode, which needs the file to itself for a moment, and SQLite answers
/// "locked" at once rather than waiting for another process that is opening it too.
async fn patiently<T, F, Fut>(mut connect: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let deadline = tokio::time::Instant::now() + OPEN_PATIENCE;
    loop {
        match connect().await {
            Err(error) if dialect::busy(&error) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(fastrand::u64(5..=50))).await;
            }
            other => return other,
        }
    }
}

/// The error for a database that cannot be opened at `path`.
fn file_error(path: &str, source: sqlx::Error) -> OpenError {
    OpenError::File {
        path: path.to_owned(),
        source: Box::new(source),
    }
}

impl EventStore for SqliteStore {
    type Session<'a> = SqliteSession<'a>;

    async fn session(&self) -> Result<SqliteSession<'_>, StoreError> {
        Ok(SqliteSession(self))
    }

    fn append_signal(&self) -> Option<watch::Receiver<u64>> {
        Some(self.appended.subscribe())
    }
}
