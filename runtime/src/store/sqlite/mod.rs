//! The embedded SQLite store: no server, one file (or memory).

use std::ops::RangeBounds;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use uuid::fmt::Hyphenated;

use tokio::sync::watch;

use crate::event::{Checkpoint, NewEvent, RecordedEvent, StoredEvent};
use crate::store::group::{Batch, Coalescer, Outcome, Request, Writer};
use crate::store::sql::{RawRecord, for_each_row};
use crate::store::{
    AppendResult, EventStore, ExpectedVersion, SharedSession, SnapshotRead, SnapshotRecord,
    StoreError, VersionRange, replayed_append, validate_append, validate_stream_id,
};

/// Versioned schema migrations, applied in order on open and recorded in `annals_schema`.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "events",
        include_str!("../../../migrations/sqlite/0001_events.sql"),
    ),
    (
        2,
        "snapshots",
        include_str!("../../../migrations/sqlite/0002_snapshots.sql"),
    ),
];

/// One query for a load from a snapshot: the stream's snapshot when it has the fingerprint
/// (`?2`), is within the target (`?3`) and its event exists (not ahead of the stream), as a
/// first row with NULL event columns; then the events after it up to the target.
const READ_FROM_SNAPSHOT: &str = "WITH s AS (SELECT version, fingerprint, state, taken_at \
     FROM annals_snapshots WHERE stream_id = ?1 AND fingerprint = ?2 AND version <= ?3 \
       AND EXISTS (SELECT 1 FROM annals_events e \
                   WHERE e.stream_id = ?1 AND e.stream_version = annals_snapshots.version)) \
     SELECT position, stream_id, stream_version, event_id, event_name, event_version, payload, \
       metadata, recorded_at, NULL, NULL, NULL, NULL FROM annals_events \
     WHERE stream_id = ?1 AND stream_version > COALESCE((SELECT version FROM s), 0) \
       AND stream_version <= ?3 \
     UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
       version, fingerprint, state, taken_at FROM s \
     ORDER BY 3";

const STREAM_VERSION: &str =
    "SELECT COALESCE(MAX(stream_version), 0) FROM annals_events WHERE stream_id = ?";

/// Events one group commit takes at most; a larger append commits alone.
const GROUP_MAX_EVENTS: usize = 1000;

/// Rows per INSERT statement: 9 parameters each stays far below SQLite's 32,766 limit.
const INSERT_CHUNK: usize = 1000;

/// The columns `decode_row` reads, in its order.
macro_rules! select_events {
    ($($rest:literal)*) => {
        concat!(
            "SELECT position, stream_id, stream_version, event_id, event_name, event_version, \
             payload, metadata, recorded_at FROM annals_events ",
            $($rest),*
        )
    };
}

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
    group: Arc<Coalescer<GroupRequest>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // The log is the source of truth: a commit must survive a power cut.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true);
        Self::with_options(options, false).await
    }

    /// Connects with a SQLite URL such as `sqlite://bank.db` or `sqlite::memory:`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::backend)?
            .create_if_missing(true);
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        Self::with_options(options, memory).await
    }

    /// A private in-memory database, gone when the last clone of the store is dropped.
    pub async fn in_memory() -> Result<Self, StoreError> {
        Self::with_options(SqliteConnectOptions::new().in_memory(true), true).await
    }

    /// Opens with full control over the connection options. An in-memory database lives in
    /// one connection, so `memory` makes reads and writes share it.
    pub async fn with_options(
        options: SqliteConnectOptions,
        memory: bool,
    ) -> Result<Self, StoreError> {
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(if memory { 1 } else { 0 })
            // A memory database dies with its connection: never let the pool retire it.
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(StoreError::backend)?;
        migrate(&writer).await?;
        let reader = if memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .test_before_acquire(false)
                .connect_with(options.read_only(true))
                .await
                .map_err(StoreError::backend)?
        };
        Ok(Self {
            reader,
            writer,
            appended: Arc::new(watch::channel(0).0),
            group: Arc::new(Coalescer::new(1, GROUP_MAX_EVENTS)),
        })
    }

    /// Closes every connection, waiting for running queries.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(StoreError::backend)?;
    // IMMEDIATE takes the write lock first, so two processes opening a new file at once
    // apply each migration exactly once.
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .map_err(StoreError::backend)?;
    let result: Result<(), sqlx::Error> = async {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS annals_schema (version INTEGER PRIMARY KEY, \
             description TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        )
        .execute(&mut *conn)
        .await?;
        let applied: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM annals_schema")
                .fetch_one(&mut *conn)
                .await?;
        for &(version, description, sql) in MIGRATIONS.iter().filter(|m| m.0 > applied) {
            tracing::info!(version, description, "applying annals SQLite migration");
            sqlx::raw_sql(sql).execute(&mut *conn).await?;
            sqlx::query(
                "INSERT INTO annals_schema (version, description, applied_at) VALUES (?, ?, ?)",
            )
            .bind(version)
            .bind(description)
            .bind(Utc::now().timestamp_micros())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = sqlx::query(end).execute(&mut *conn).await;
    result.and(ended.map(drop)).map_err(StoreError::backend)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn decode_row(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    let raw = || -> Result<RawRecord, sqlx::Error> {
        Ok(RawRecord {
            position: row.try_get(0)?,
            // One writer at a time: positions are commit order already.
            transaction_id: None,
            stream_id: row.try_get(1)?,
            stream_version: row.try_get(2)?,
            event_id: row.try_get::<Hyphenated, _>(3)?.into_uuid(),
            name: row.try_get(4)?,
            version: row.try_get(5)?,
            payload: row.try_get(6)?,
            metadata: row.try_get(7)?,
            recorded_at: DateTime::<Utc>::from_timestamp_micros(row.try_get(8)?),
        })
    };
    raw()
        .map_err(|e| {
            RawRecord::unreadable(
                row.try_get(1).unwrap_or_default(),
                row.try_get(0).unwrap_or(0),
                e,
            )
        })?
        .into_recorded()
}

fn is_unique_violation(error: &sqlx::Error, column: &str) -> bool {
    match error {
        sqlx::Error::Database(db) => db.is_unique_violation() && db.message().contains(column),
        _ => false,
    }
}

async fn current_version(
    tx: &mut Transaction<'_, Sqlite>,
    stream: &str,
) -> Result<u64, sqlx::Error> {
    let version: i64 = sqlx::query_scalar(STREAM_VERSION)
        .bind(stream)
        .fetch_one(&mut **tx)
        .await?;
    Ok(version as u64)
}

/// Where each event id of `events` is already stored, if it is.
async fn stored_ids(
    pool: &SqlitePool,
    events: &[NewEvent],
) -> Result<Vec<Option<(String, u64, u64)>>, StoreError> {
    let mut found = Vec::with_capacity(events.len());
    for event in events {
        let row: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT stream_id, stream_version, position FROM annals_events WHERE event_id = ?",
        )
        .bind(event.event_id.hyphenated())
        .fetch_optional(pool)
        .await
        .map_err(StoreError::backend)?;
        found.push(row.map(|(s, v, p)| (s, v as u64, p as u64)));
    }
    Ok(found)
}

/// Builds `INSERT ... VALUES (...), (...) RETURNING position` for `rows` events.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO annals_events (stream_id, stream_version, event_id, event_name, event_version, \
         payload, metadata, recorded_at) VALUES ",
    );
    for i in 0..rows {
        sql.push_str(if i == 0 {
            "(?, ?, ?, ?, ?, ?, ?, ?)"
        } else {
            ", (?, ?, ?, ?, ?, ?, ?, ?)"
        });
    }
    sql.push_str(" RETURNING position");
    sql
}

/// Inserts `events` into `stream` after version `actual`, inside the caller's transaction.
async fn insert_events(
    tx: &mut Transaction<'_, Sqlite>,
    stream: &str,
    actual: u64,
    events: &[NewEvent],
    recorded_at: i64,
) -> Result<AppendResult, sqlx::Error> {
    let mut positions = Vec::with_capacity(events.len());
    let mut metadata = Vec::with_capacity(events.len());
    for event in events {
        metadata.push(
            serde_json::to_string(&event.metadata).map_err(|e| sqlx::Error::Encode(Box::new(e)))?,
        );
    }
    let mut version = actual;
    for (chunk, meta) in events
        .chunks(INSERT_CHUNK)
        .zip(metadata.chunks(INSERT_CHUNK))
    {
        let sql = insert_sql(chunk.len());
        let mut query = sqlx::query_scalar::<_, i64>(&sql);
        for (event, meta) in chunk.iter().zip(meta) {
            version += 1;
            query = query
                .bind(stream)
                .bind(to_i64(version))
                .bind(event.event_id.hyphenated())
                .bind(event.name.as_str())
                .bind(i64::from(event.version))
                .bind(event.payload.get())
                .bind(meta.as_str())
                .bind(recorded_at);
        }
        positions.extend(query.fetch_all(&mut **tx).await?);
    }
    let first = positions.iter().copied().min().unwrap_or(0) as u64;
    let last = positions.iter().copied().max().unwrap_or(0) as u64;
    Ok(AppendResult {
        stream_version: version,
        first_position: first,
        last_position: last,
        already_stored: false,
    })
}

/// An append waiting for group commit. It shares the events with the appending caller,
/// which appends them alone if the group does not settle the request.
struct GroupRequest {
    stream: String,
    expected: u64,
    events: Arc<Vec<NewEvent>>,
}

impl Request for GroupRequest {
    fn stream(&self) -> &str {
        &self.stream
    }

    fn len(&self) -> usize {
        self.events.len()
    }
}

impl SqliteStore {
    async fn try_append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Result<AppendResult, StoreError>, sqlx::Error> {
        let mut tx = self.writer.begin().await?;
        let actual = current_version(&mut tx, stream).await?;
        if !expected.accepts(actual) {
            return Ok(Err(StoreError::WrongExpectedVersion {
                stream: stream.to_owned(),
                expected,
                actual,
            }));
        }
        let recorded_at = Utc::now().timestamp_micros();
        let done = insert_events(&mut tx, stream, actual, events, recorded_at).await?;
        tx.commit().await?;
        Ok(Ok(done))
    }

    /// Appends through group commit when the expected version is exact. `None`: append
    /// alone.
    async fn append_grouped(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &Arc<Vec<NewEvent>>,
    ) -> Option<AppendResult> {
        let expected = expected
            .exact()
            .filter(|_| self.group.accepts(events.len()))?;
        let request = GroupRequest {
            stream: stream.to_owned(),
            expected,
            events: Arc::clone(events),
        };
        match self.group.settle(request, self).await {
            Outcome::Done(result) => Some(result),
            Outcome::Alone => None,
        }
    }

    async fn fetch_events<'q>(
        &self,
        query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = query
            .fetch_all(&self.reader)
            .await
            .map_err(StoreError::backend)?;
        rows.iter().map(decode_row).collect()
    }
}

impl Writer<GroupRequest> for SqliteStore {
    /// Writes a group's requests in one transaction, so one commit (one sync of the log)
    /// settles them all. A request whose stream is not at its expected version is left to
    /// append alone, where conflicts and retried appends are told apart; so is every
    /// request when the transaction fails.
    async fn write(&self, batch: &Batch<GroupRequest>) -> Vec<Outcome> {
        let written = async {
            let mut tx = self.writer.begin().await?;
            let recorded_at = Utc::now().timestamp_micros();
            let mut outcomes = Vec::with_capacity(batch.requests().len());
            for request in batch.requests() {
                let actual = current_version(&mut tx, &request.stream).await?;
                outcomes.push(if actual == request.expected {
                    Outcome::Done(
                        insert_events(
                            &mut tx,
                            &request.stream,
                            actual,
                            &request.events,
                            recorded_at,
                        )
                        .await?,
                    )
                } else {
                    Outcome::Alone
                });
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(outcomes)
        };
        written.await.unwrap_or_else(|error| {
            tracing::debug!(%error, requests = batch.requests().len(), "group commit failed; each appends alone");
            Vec::new()
        })
    }
}

impl EventStore for SqliteStore {
    type Session<'a> = SharedSession<'a, Self>;

    async fn session(&self) -> Result<Self::Session<'_>, StoreError> {
        Ok(SharedSession(self))
    }

    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        validate_append(stream, &events)?;
        let events = Arc::new(events);
        if let Some(done) = self.append_grouped(stream, expected, &events).await {
            self.appended.send_modify(|n| *n += 1);
            return Ok(done);
        }
        let conflict = match self.try_append(stream, expected, &events).await {
            Ok(Ok(done)) => {
                self.appended.send_modify(|n| *n += 1);
                return Ok(done);
            }
            Ok(Err(conflict)) => conflict,
            // Another process appended between our read and write.
            Err(e) if is_unique_violation(&e, "stream_version") => {
                let actual = self.stream_version(stream).await?;
                StoreError::WrongExpectedVersion {
                    stream: stream.to_owned(),
                    expected,
                    actual,
                }
            }
            Err(e) if is_unique_violation(&e, "event_id") => StoreError::backend(e),
            Err(e) => return Err(StoreError::backend(e)),
        };
        // Slow path only: a retried append carries a stale expected version or stored ids.
        let stored = stored_ids(&self.writer, &events).await?;
        match replayed_append(stream, &stored, &events)? {
            Some(original) => Ok(original),
            None => Err(conflict),
        }
    }

    async fn read_stream(
        &self,
        stream: &str,
        range: impl RangeBounds<u64> + Send,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        validate_stream_id(stream)?;
        let range = VersionRange::new(range);
        const SQL: &str = select_events!(
            "WHERE stream_id = ? AND stream_version BETWEEN ? AND ? ORDER BY stream_version"
        );
        self.fetch_events(
            sqlx::query(SQL)
                .bind(stream)
                .bind(to_i64(range.from))
                .bind(to_i64(range.to)),
        )
        .await
    }

    async fn fold_stream<F, E>(&self, stream: &str, range: VersionRange, mut f: F) -> Result<(), E>
    where
        F: FnMut(StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        validate_stream_id(stream)?;
        let rows = sqlx::query(
            "SELECT stream_version, position, event_name, event_version, payload FROM annals_events \
             WHERE stream_id = ? AND stream_version BETWEEN ? AND ? ORDER BY stream_version",
        )
        .bind(stream)
        .bind(to_i64(range.from))
        .bind(to_i64(range.to))
        .fetch(&self.reader);
        for_each_row(rows, |row| {
            f(StoredEvent::from_row::<_, false>(stream, row)?)
        })
        .await?;
        Ok(())
    }

    async fn read_all(
        &self,
        after: Checkpoint,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        const SQL: &str = select_events!("WHERE position > ? ORDER BY position LIMIT ?");
        self.fetch_events(
            sqlx::query(SQL)
                .bind(to_i64(after.position))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX)),
        )
        .await
    }

    async fn fold_all<F, E>(&self, after: Checkpoint, limit: usize, mut f: F) -> Result<usize, E>
    where
        F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        // Positions are commit order here: the position is the transaction id too.
        let rows = sqlx::query(
            "SELECT stream_version, position, event_name, event_version, payload, stream_id, position \
             FROM annals_events WHERE position > ? ORDER BY position LIMIT ?",
        )
        .bind(to_i64(after.position))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch(&self.reader);
        for_each_row(rows, |row| {
            let (checkpoint, event) =
                StoredEvent::from_global_row::<_, false>(row, row.try_get(6))?;
            f(checkpoint, event)
        })
        .await
    }

    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        validate_stream_id(stream)?;
        let version: i64 = sqlx::query_scalar(STREAM_VERSION)
            .bind(stream)
            .fetch_one(&self.reader)
            .await
            .map_err(StoreError::backend)?;
        Ok(version as u64)
    }

    fn append_signal(&self) -> Option<watch::Receiver<u64>> {
        Some(self.appended.subscribe())
    }

    async fn read_from_snapshot(
        &self,
        stream: &str,
        fingerprint: u64,
        to: u64,
    ) -> Result<SnapshotRead, StoreError> {
        validate_stream_id(stream)?;
        let rows = sqlx::query(READ_FROM_SNAPSHOT)
            .bind(stream)
            .bind(fingerprint as i64)
            .bind(to_i64(to))
            .fetch_all(&self.reader)
            .await
            .map_err(StoreError::backend)?;
        let mut read = SnapshotRead::default();
        read.events.reserve(rows.len());
        for row in &rows {
            let version: Option<i64> = row.try_get(9).map_err(|e| {
                RawRecord::unreadable(stream.to_owned(), row.try_get(0).unwrap_or(0), e)
            })?;
            match version {
                Some(version) => {
                    let column = |e: sqlx::Error| {
                        RawRecord::unreadable(stream.to_owned(), row.try_get(0).unwrap_or(0), e)
                    };
                    let fingerprint: i64 = row.try_get(10).map_err(column)?;
                    let state: String = row.try_get(11).map_err(column)?;
                    let micros: i64 = row.try_get(12).map_err(column)?;
                    read.snapshot = Some(SnapshotRecord {
                        stream_id: stream.to_owned(),
                        version: version as u64,
                        fingerprint: fingerprint as u64,
                        state,
                        taken_at: DateTime::<Utc>::from_timestamp_micros(micros)
                            .unwrap_or_default(),
                    });
                }
                None => read.events.push(decode_row(row)?),
            }
        }
        Ok(read)
    }

    async fn read_snapshot(&self, stream: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        validate_stream_id(stream)?;
        let row: Option<(i64, i64, String, i64)> = sqlx::query_as(
            "SELECT version, fingerprint, state, taken_at FROM annals_snapshots WHERE stream_id = ?",
        )
        .bind(stream)
        .fetch_optional(&self.reader)
        .await
        .map_err(StoreError::backend)?;
        Ok(
            row.map(|(version, fingerprint, state, micros)| SnapshotRecord {
                stream_id: stream.to_owned(),
                version: version as u64,
                fingerprint: fingerprint as u64,
                state,
                taken_at: DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default(),
            }),
        )
    }

    async fn write_snapshot(&self, snapshot: SnapshotRecord) -> Result<(), StoreError> {
        validate_stream_id(&snapshot.stream_id)?;
        sqlx::query(
            "INSERT INTO annals_snapshots (stream_id, version, fingerprint, state, taken_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, \
             fingerprint = excluded.fingerprint, state = excluded.state, taken_at = excluded.taken_at \
             WHERE excluded.version >= annals_snapshots.version \
                OR excluded.fingerprint <> annals_snapshots.fingerprint \
                OR NOT EXISTS (SELECT 1 FROM annals_events e WHERE e.stream_id = excluded.stream_id \
                               AND e.stream_version = annals_snapshots.version)",
        )
        .bind(&snapshot.stream_id)
        .bind(to_i64(snapshot.version))
        .bind(snapshot.fingerprint as i64)
        .bind(&snapshot.state)
        .bind(snapshot.taken_at.timestamp_micros())
        .execute(&self.writer)
        .await
        .map_err(StoreError::backend)?;
        Ok(())
    }
}
