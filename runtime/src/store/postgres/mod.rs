//! The PostgreSQL store: production storage with a hole-free global order.

use std::ops::RangeBounds;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::event::{Checkpoint, NewEvent, RecordedEvent, StoredEvent};
use crate::store::group::{Batch, Coalescer, Outcome, Request, Writer};
use crate::store::sql::{RawRecord, for_each_row};
use crate::store::{
    AppendResult, EventStore, ExpectedVersion, SnapshotRead, SnapshotRecord, StoreError,
    StoreSession, VersionRange, replayed_append, validate_append, validate_stream_id,
};

/// Versioned schema migrations, applied in order on connect and recorded in `annals_schema`.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "events",
        include_str!("../../../migrations/postgres/0001_events.sql"),
    ),
    (
        2,
        "snapshots",
        include_str!("../../../migrations/postgres/0002_snapshots.sql"),
    ),
    (
        3,
        "notify after commit",
        include_str!("../../../migrations/postgres/0003_notify_after_commit.sql"),
    ),
    (
        4,
        "json columns",
        include_str!("../../../migrations/postgres/0004_json_columns.sql"),
    ),
    (
        5,
        "global order key",
        include_str!("../../../migrations/postgres/0005_global_order_key.sql"),
    ),
];

/// The schema fixes every column's type: rows are decoded without sqlx's per-column type
/// check, which costs more than the decoding itself (see `store::column`).
const TRUSTED_COLUMNS: bool = true;

/// Group-commit writers unless [`PostgresOptions::group_writers`] says otherwise.
const DEFAULT_GROUP_WRITERS: usize = 2;

/// The most events one group commit carries; a bigger append is written on its own.
const GROUP_MAX_EVENTS: usize = 1000;
/// The least time between two notifications to other processes. In-process subscribers
/// are woken at once; other processes hear of a burst of appends at most this late.
const NOTIFY_SPACING: Duration = Duration::from_millis(5);

/// The planner settings of annals' own connections. Every statement annals runs has an
/// index that yields its rows in the order it asks for, and an ordered index scan is the
/// only plan that stays fast as the table grows. PostgreSQL cannot estimate `xid8` ranges
/// and may hold stale statistics for a stream that just grew, and with those estimates it
/// picks bitmap scans or sorts: a catch-up page of 65,536 events then sorted the table on
/// disk, five times slower than walking the key. JIT compilation is off: it pays only for
/// long analytical queries, and a disabled plan node's penalty would make every statement
/// look expensive enough to compile. Your own pool keeps the server's defaults.
const OWN_PLANNER_SETTINGS: [(&str, &str); 4] = [
    ("enable_seqscan", "off"),
    ("enable_bitmapscan", "off"),
    ("enable_sort", "off"),
    ("jit", "off"),
];

/// Pool settings for both pools: connections are checked when they fail, not pinged on
/// every checkout (a ping is a round trip on every command's hot path).
fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(10))
}

/// The columns of a [`RecordedEvent`]. The cast transaction id gets its own name: left as
/// `transaction_id`, it would shadow the column in `ORDER BY transaction_id`, which would
/// then sort by the cast expression instead of walking the index (a full sort per page).
const COLUMNS: &str = "position, transaction_id::text::int8 AS transaction_number, stream_id, stream_version, event_id, \
     event_name, event_version, payload::text, metadata::text, recorded_at";

/// The SQL of one store, with its schema spliced in once (a validated identifier) so that
/// every query is a constant string: prepared once per connection, bound parameters only.
#[derive(Debug)]
struct Statements {
    schema: String,
    append: String,
    append_group: String,
    append_one: String,
    read_stream: String,
    fold_stream: String,
    read_all: String,
    fold_all: String,
    stream_version: String,
    stored_ids: String,
    read_from_snapshot: String,
    read_snapshot: String,
    write_snapshot: String,
    channel: String,
}

impl Statements {
    fn new(schema: &str) -> Self {
        let t = format!("\"{schema}\".annals_events");
        let s = format!("\"{schema}\".annals_snapshots");
        Self {
            schema: schema.to_owned(),
            // One statement, one round trip: read the stream's version, insert the batch only
            // if it matches, and report both. The unique (stream_id, stream_version) key
            // rejects the loser of two concurrent appends that read the same version.
            append: format!(
                "WITH cur AS (SELECT COALESCE(MAX(stream_version), 0) AS v FROM {t} WHERE stream_id = $1), \
                 ins AS (INSERT INTO {t} (stream_id, stream_version, event_id, event_name, event_version, payload, metadata) \
                   SELECT $1, cur.v + e.n, e.id, e.name, e.version, e.payload::json, e.metadata::json \
                   FROM cur, UNNEST($3::uuid[], $4::text[], $5::int4[], $6::text[], $7::text[]) \
                     WITH ORDINALITY AS e(id, name, version, payload, metadata, n) \
                   WHERE $2::int8 < 0 OR cur.v = $2::int8 \
                   ORDER BY e.n \
                   RETURNING position, stream_version) \
                 SELECT cur.v, MIN(ins.position), MAX(ins.position), MAX(ins.stream_version) \
                 FROM cur LEFT JOIN ins ON true GROUP BY cur.v"
            ),
            // One statement for many streams' appends (group commit), each with an exact
            // expected version. A request's rows go in only when its stream is exactly at the
            // expected version: of the versions `expected` and `expected + 1`, it has the
            // first only (none for a new stream). An aggregate subquery stays a per-row key
            // probe in every plan, never a join over the table. The unique key still catches
            // a concurrent writer, failing the statement, which then writes nothing.
            append_group: format!(
                "INSERT INTO {t} (stream_id, stream_version, event_id, event_name, event_version, payload, metadata) \
                 SELECT e.stream_id, e.expected + e.n, e.id, e.name, e.version, e.payload::json, e.metadata::json \
                 FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::uuid[], $5::text[], $6::int4[], $7::text[], $8::text[]) \
                   WITH ORDINALITY AS e(stream_id, expected, n, id, name, version, payload, metadata, o) \
                 WHERE (SELECT count(*) FROM {t} c WHERE c.stream_id = e.stream_id \
                          AND c.stream_version BETWEEN e.expected AND e.expected + 1) \
                       = CASE WHEN e.expected = 0 THEN 0 ELSE 1 END \
                 ORDER BY e.o \
                 RETURNING stream_id, stream_version, position"
            ),
            // `append_group` for a group of one event, on scalar parameters. Alone in its
            // statement, it may fail outright, so it leaves half the guard to the unique
            // key: it checks only that the expected version exists, and a stream that is
            // already past it fails on the key, writing nothing. Either way the request
            // then appends alone and learns why. A new stream is checked in full, though:
            // a creating command bets on it without reading, and an existing stream is
            // then a routine outcome, not worth an error in the server's log.
            append_one: format!(
                "INSERT INTO {t} (stream_id, stream_version, event_id, event_name, event_version, payload, metadata) \
                 SELECT $1, $2 + 1, $3, $4, $5, $6::json, $7::json \
                 WHERE CASE WHEN $2 = 0 THEN NOT EXISTS (SELECT 1 FROM {t} c WHERE c.stream_id = $1) \
                   ELSE EXISTS (SELECT 1 FROM {t} c WHERE c.stream_id = $1 AND c.stream_version = $2) END \
                 RETURNING stream_id, stream_version, position"
            ),
            read_stream: format!(
                "SELECT {COLUMNS} FROM {t} WHERE stream_id = $1 AND stream_version BETWEEN $2 AND $3 \
                 ORDER BY stream_version"
            ),
            // A `json` value is sent in binary as its text, so the payload is read as it is
            // stored, with no conversion to `text` on the server for every row.
            fold_stream: format!(
                "SELECT stream_version, position, event_name, event_version, payload FROM {t} \
                 WHERE stream_id = $1 AND stream_version BETWEEN $2 AND $3 ORDER BY stream_version"
            ),
            // Only rows of finished transactions: anything still running has an id at or
            // above the snapshot's xmin, and will sort after what is returned here. As a
            // subquery, the bound is worked out once and ends the walk along the key.
            read_all: format!(
                "SELECT {COLUMNS} FROM {t} \
                 WHERE (transaction_id, position) > ($1::int8::text::xid8, $2::int8) \
                   AND transaction_id < (SELECT pg_snapshot_xmin(pg_current_snapshot())) \
                 ORDER BY transaction_id, position LIMIT $3"
            ),
            // `read_all`'s order and bound, with the columns of `fold_stream` first. The
            // transaction id comes as it is stored, not cast through text on every row.
            fold_all: format!(
                "SELECT stream_version, position, event_name, event_version, payload, stream_id, \
                   transaction_id FROM {t} \
                 WHERE (transaction_id, position) > ($1::int8::text::xid8, $2::int8) \
                   AND transaction_id < (SELECT pg_snapshot_xmin(pg_current_snapshot())) \
                 ORDER BY transaction_id, position LIMIT $3"
            ),
            stream_version: format!(
                "SELECT COALESCE(MAX(stream_version), 0) FROM {t} WHERE stream_id = $1"
            ),
            stored_ids: format!(
                "SELECT event_id, stream_id, stream_version, position FROM {t} WHERE event_id = ANY($1)"
            ),
            // One statement, one round trip: the snapshot when it has the fingerprint ($2), is
            // within the target ($3) and its event exists (not ahead of the stream), as a
            // first row with NULL event columns; then the events after it up to the target.
            read_from_snapshot: format!(
                "WITH s AS (SELECT version, fingerprint, state, taken_at FROM {s} \
                   WHERE stream_id = $1 AND fingerprint = $2 AND version <= $3 \
                     AND EXISTS (SELECT 1 FROM {t} e WHERE e.stream_id = $1 AND e.stream_version = {s}.version)) \
                 SELECT {COLUMNS}, NULL::int8, NULL::int8, NULL::text, NULL::timestamptz FROM {t} \
                 WHERE stream_id = $1 AND stream_version > COALESCE((SELECT version FROM s), 0) \
                   AND stream_version <= $3 \
                 UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
                   version, fingerprint, state, taken_at FROM s \
                 ORDER BY 4 NULLS FIRST"
            ),
            read_snapshot: format!(
                "SELECT version, fingerprint, state, taken_at FROM {s} WHERE stream_id = $1"
            ),
            write_snapshot: format!(
                "INSERT INTO {s} AS cur (stream_id, version, fingerprint, state, taken_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream_id) DO UPDATE SET \
                 version = excluded.version, fingerprint = excluded.fingerprint, \
                 state = excluded.state, taken_at = excluded.taken_at \
                 WHERE excluded.version >= cur.version OR excluded.fingerprint <> cur.fingerprint \
                    OR NOT EXISTS (SELECT 1 FROM {t} e WHERE e.stream_id = excluded.stream_id \
                                   AND e.stream_version = cur.version)"
            ),
            channel: channel(schema),
        }
    }
}

/// The notification channel of the store in `schema`.
fn channel(schema: &str) -> String {
    format!("annals_events_{schema}")
}

/// Settings for [`PostgresStore::connect_with`].
///
/// ```
/// use annals::PostgresOptions;
/// let options = PostgresOptions::new("postgres://postgres@127.0.0.1:5432/test")
///     .schema("billing")
///     .max_connections(16);
/// # drop(options);
/// ```
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    url: String,
    schema: String,
    max_connections: u32,
    group_writers: usize,
}

impl PostgresOptions {
    /// Options for the server at `url`: schema `public`, 10 connections, group commit
    /// with 2 writers.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "public".to_owned(),
            max_connections: 10,
            group_writers: DEFAULT_GROUP_WRITERS,
        }
    }

    /// The schema holding annals' tables (created if missing). Lowercase letters, digits
    /// and `_`, starting with a letter or `_`, at most 48 characters.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The size of each pool: annals' own, and the one [`PostgresStore::pool`] hands
    /// out for your queries, which opens no connection until you use it.
    #[must_use]
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Group commit: how many appends may be written at once (at least 1), each writer on
    /// a connection of its own besides the pool's. Appends that arrive while every writer
    /// is busy wait and then go together, many streams in one statement and one commit.
    /// Fewer writers make bigger groups; the default, 2, keeps one group filling while the
    /// other commits.
    ///
    /// ```
    /// use annals::PostgresOptions;
    /// let options = PostgresOptions::new("postgres://postgres@127.0.0.1:5432/test").group_writers(4);
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn group_writers(mut self, writers: usize) -> Self {
        self.group_writers = writers.max(1);
        self
    }
}

/// An event store in PostgreSQL (13 or later).
///
/// - An append is one statement and one round trip for the whole batch; the database's
///   unique key on (stream, version) enforces the expected version.
/// - Group commit: appends that arrive while others are being written go together, many
///   streams in one statement and one commit, each stream's expected version still checked.
/// - The global order is (transaction id, position), read only below the oldest running
///   transaction, so a reader never skips an event that commits late with a low position,
///   and writers are never serialised to get there.
/// - Subscribers in the process wake on every append; other processes hear of appends
///   through `LISTEN`/`NOTIFY`, sent after the commit, with polling as the fallback.
///
/// ```no_run
/// use annals::PostgresStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), annals::StoreError> {
/// let store = PostgresStore::connect("postgres://postgres@127.0.0.1:5432/test").await?;
/// # drop(store); Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PostgresStore {
    /// The pool [`PostgresStore::pool`] hands out, with the server's own settings.
    pool: PgPool,
    /// annals' own connections: planned with [`OWN_PLANNER_SETTINGS`].
    own: PgPool,
    sql: Arc<Statements>,
    group: Arc<Coalescer<GroupRequest>>,
    writers: Arc<Writers>,
    appended: Arc<watch::Sender<u64>>,
    /// Asks the notifier task to tell other processes; full means one is already due.
    notify: mpsc::Sender<()>,
    listening: Arc<AtomicBool>,
}

/// `url` with its password replaced, fit for messages and logs.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let Some(at) = rest.find('@') else {
        return url.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

fn valid_schema(schema: &str) -> bool {
    let mut chars = schema.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 48
}

impl PostgresStore {
    /// Connects to `url` with default [`PostgresOptions`] and creates or upgrades the schema.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PostgresOptions::new(url)).await
    }

    /// Connects with `options` and creates or upgrades the schema.
    pub async fn connect_with(options: PostgresOptions) -> Result<Self, StoreError> {
        let connect_error = |source: sqlx::Error| StoreError::Connect {
            url: redact(&options.url),
            source: Box::new(source),
        };
        let connect: PgConnectOptions = options.url.parse().map_err(connect_error)?;
        // One direct connection first: a refused or misconfigured server fails at once,
        // where the pool would retry until its acquire timeout.
        let probe = <PgConnection as sqlx::Connection>::connect_with(&connect)
            .await
            .map_err(connect_error)?;
        let _ = sqlx::Connection::close(probe).await;
        // Yours stays empty until you use it.
        let pool = pool_options(options.max_connections).connect_lazy_with(connect);
        Self::open(pool, &options.schema, options.group_writers).await
    }

    /// Uses an existing pool for [`PostgresStore::pool`], and a pool of the same size and
    /// connect options for annals' own statements; creates or upgrades the schema.
    pub async fn from_pool(pool: PgPool, schema: &str) -> Result<Self, StoreError> {
        Self::open(pool, schema, DEFAULT_GROUP_WRITERS).await
    }

    async fn open(pool: PgPool, schema: &str, writers: usize) -> Result<Self, StoreError> {
        if !valid_schema(schema) {
            return Err(StoreError::InvalidSchema {
                schema: schema.to_owned(),
            });
        }
        let sql = Statements::new(schema);
        let own_options = (*pool.connect_options())
            .clone()
            .options(OWN_PLANNER_SETTINGS);
        let own = pool_options(pool.options().get_max_connections())
            .connect_lazy_with(own_options.clone());
        migrate(&own, schema).await?;
        // Writers run the group append only, whose custom plans cost more to make than to
        // run: a generic plan is made once per connection.
        let writer_options = own_options.options([("plan_cache_mode", "force_generic_plan")]);
        let (notify, pokes) = mpsc::channel(1);
        tokio::spawn(notify_others(own.clone(), sql.channel.clone(), pokes));
        Ok(Self {
            pool,
            own,
            sql: Arc::new(sql),
            group: Arc::new(Coalescer::new(writers, GROUP_MAX_EVENTS)),
            writers: Arc::new(Writers {
                options: writer_options,
                idle: Mutex::new(Vec::with_capacity(writers)),
            }),
            appended: Arc::new(watch::channel(0).0),
            notify,
            listening: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.sql.schema
    }

    /// A connection pool for queries of your own, with the server's planner settings
    /// (annals runs its statements on connections of its own, planned to walk their
    /// indexes).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn connection(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        self.own.acquire().await.map_err(StoreError::backend)
    }

    /// Wakes this process's subscribers now, and other processes' soon.
    fn announce(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
        let _ = self.notify.try_send(());
    }

    /// Appends through group commit when the expected version is exact, else alone.
    async fn append_on(
        &self,
        conn: &mut Lazy<'_>,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        validate_append(stream, &events)?;
        let at = expected
            .exact()
            .filter(|_| self.group.accepts(events.len()));
        if let Some(expected) = at {
            let request = GroupRequest::new(stream, to_i64(expected), &events)?;
            if let Outcome::Done(result) = self.group.settle(request, self).await {
                self.announce();
                return Ok(result);
            }
        }
        let result = append(conn.get().await?, &self.sql, stream, expected, events).await?;
        if !result.already_stored {
            self.announce();
        }
        Ok(result)
    }

    /// Starts the task that turns notifications into append signals, unless it runs.
    fn ensure_listener(&self) {
        if self.listening.swap(true, Ordering::AcqRel) {
            return;
        }
        let (pool, channel) = (self.own.clone(), self.sql.channel.clone());
        let (signal, listening) = (Arc::downgrade(&self.appended), Arc::clone(&self.listening));
        tokio::spawn(async move {
            listen(pool, &channel, signal).await;
            listening.store(false, Ordering::Release);
        });
    }
}

/// Forwards notifications until no store or subscriber is left. Subscribers poll as well,
/// so a lost connection delays them by at most their poll interval.
async fn listen(pool: PgPool, channel: &str, signal: std::sync::Weak<watch::Sender<u64>>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for appends; subscribers fall back to polling");
                tokio::time::sleep(Duration::from_secs(1)).await;
                if signal.upgrade().is_none_or(|s| s.receiver_count() == 0) {
                    return;
                }
                continue;
            }
        };
        if let Err(error) = listener.listen(channel).await {
            tracing::warn!(%error, "LISTEN failed; subscribers fall back to polling");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            let Some(sender) = signal.upgrade() else {
                return;
            };
            tokio::select! {
                received = listener.try_recv() => {
                    // `None`: the connection dropped and notifications may have been lost.
                    sender.send_modify(|n| *n = n.wrapping_add(1));
                    match received {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(error) => {
                            tracing::warn!(%error, "notification connection failed; reconnecting");
                            break;
                        }
                    }
                }
                () = sender.closed() => return,
            }
        }
    }
}

/// Tells other processes' listeners that events were appended, at most once per
/// [`NOTIFY_SPACING`], until every handle of the store is gone. A NOTIFY inside the
/// appending transaction would instead serialise all concurrent commits on the database's
/// notification lock.
async fn notify_others(pool: PgPool, channel: String, mut pokes: mpsc::Receiver<()>) {
    while pokes.recv().await.is_some() {
        if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(&channel)
            .execute(&pool)
            .await
        {
            tracing::debug!(%error, "cannot NOTIFY other processes of appends; they poll");
        }
        tokio::time::sleep(NOTIFY_SPACING).await;
    }
}

async fn migrate(pool: &PgPool, schema: &str) -> Result<(), StoreError> {
    let run = async {
        let mut tx = pool.begin().await?;
        // Concurrent first connections apply each migration exactly once.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('annals.migrate.' || $1))")
            .bind(schema)
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; \
             CREATE TABLE IF NOT EXISTS \"{schema}\".annals_schema (version bigint PRIMARY KEY, \
             description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        ))
        .execute(&mut *tx)
        .await?;
        let applied: i64 = sqlx::query_scalar(&format!(
            "SELECT COALESCE(MAX(version), 0) FROM \"{schema}\".annals_schema"
        ))
        .fetch_one(&mut *tx)
        .await?;
        for &(version, description, sql) in MIGRATIONS.iter().filter(|m| m.0 > applied) {
            tracing::info!(
                version,
                description,
                schema,
                "applying annals PostgreSQL migration"
            );
            let channel = channel(schema);
            let sql = sql
                .replace("{schema}", &format!("\"{schema}\""))
                .replace("{channel}", &format!("'{channel}'"));
            sqlx::raw_sql(&sql).execute(&mut *tx).await?;
            sqlx::query(&format!(
                "INSERT INTO \"{schema}\".annals_schema (version, description) VALUES ($1, $2)"
            ))
            .bind(version)
            .bind(description)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    };
    run.await.map_err(|e| StoreError::Migration {
        backend: "PostgreSQL",
        source: Box::new(e),
    })
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn decode_row(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let raw = || -> Result<RawRecord, sqlx::Error> {
        Ok(RawRecord {
            position: row.try_get(0)?,
            transaction_id: Some(row.try_get(1)?),
            stream_id: row.try_get(2)?,
            stream_version: row.try_get(3)?,
            event_id: row.try_get(4)?,
            name: row.try_get(5)?,
            version: i64::from(row.try_get::<i32, _>(6)?),
            payload: row.try_get(7)?,
            metadata: row.try_get(8)?,
            recorded_at: Some(row.try_get::<DateTime<Utc>, _>(9)?),
        })
    };
    raw()
        .map_err(|e| {
            RawRecord::unreadable(
                row.try_get(2).unwrap_or_default(),
                row.try_get(0).unwrap_or(0),
                e,
            )
        })?
        .into_recorded()
}

fn violated_constraint(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => db.constraint(),
        _ => None,
    }
}

async fn read_stream(
    conn: &mut PgConnection,
    sql: &Statements,
    stream: &str,
    range: VersionRange,
) -> Result<Vec<RecordedEvent>, StoreError> {
    validate_stream_id(stream)?;
    let rows = sqlx::query(&sql.read_stream)
        .bind(stream)
        .bind(to_i64(range.from))
        .bind(to_i64(range.to))
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::backend)?;
    rows.iter().map(decode_row).collect()
}

async fn fold_stream<F, E>(
    conn: &mut PgConnection,
    sql: &Statements,
    stream: &str,
    range: VersionRange,
    mut f: F,
) -> Result<(), E>
where
    F: FnMut(StoredEvent<'_>) -> Result<(), E>,
    E: From<StoreError>,
{
    validate_stream_id(stream)?;
    let rows = sqlx::query(&sql.fold_stream)
        .bind(stream)
        .bind(to_i64(range.from))
        .bind(to_i64(range.to))
        .fetch(&mut *conn);
    for_each_row(rows, |row| {
        f(StoredEvent::from_row::<_, TRUSTED_COLUMNS>(stream, row)?)
    })
    .await?;
    Ok(())
}

/// Up to `limit` events after `after` in global order, each handed to `f` as it arrives.
async fn fold_all<F, E>(
    conn: &mut PgConnection,
    sql: &Statements,
    after: Checkpoint,
    limit: usize,
    mut f: F,
) -> Result<usize, E>
where
    F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E>,
    E: From<StoreError>,
{
    let rows = sqlx::query(&sql.fold_all)
        .bind(to_i64(after.transaction_id))
        .bind(to_i64(after.position))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch(conn);
    for_each_row(rows, |row| {
        // `xid8` is sent as an unsigned 64-bit integer, which sqlx has no type for; as
        // transaction ids stay far below 2^63, it reads as the `int8` it equals.
        let transaction = row.try_get_unchecked::<i64, _>(6);
        let (checkpoint, event) =
            StoredEvent::from_global_row::<_, TRUSTED_COLUMNS>(row, transaction)?;
        f(checkpoint, event)
    })
    .await
}

async fn stream_version(
    conn: &mut PgConnection,
    sql: &Statements,
    stream: &str,
) -> Result<u64, StoreError> {
    validate_stream_id(stream)?;
    let version: i64 = sqlx::query_scalar(&sql.stream_version)
        .bind(stream)
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::backend)?;
    Ok(version as u64)
}

/// The group-commit writers' connections, one per writer slot, apart from the pool: a
/// leader never waits for a connection that commands queued behind it hold, nor for a
/// pooled connection's return, which sqlx hands to a task of its own.
#[derive(Debug)]
struct Writers {
    options: PgConnectOptions,
    idle: Mutex<Vec<PgConnection>>,
}

impl Writers {
    /// An idle writer connection, or a new one. The caller holds a writer slot, so at
    /// most one connection per slot exists.
    async fn take(&self) -> Result<PgConnection, sqlx::Error> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => <PgConnection as sqlx::Connection>::connect_with(&self.options).await,
        }
    }

    /// Keeps `conn` for the next group.
    fn give_back(&self, conn: PgConnection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }
}

/// A pool connection taken on first use: a command served from the aggregate cache, whose
/// append another command's group commit writes, never checks one out.
struct Lazy<'a> {
    pool: &'a PgPool,
    conn: Option<PoolConnection<Postgres>>,
}

impl<'a> Lazy<'a> {
    fn new(pool: &'a PgPool) -> Self {
        Self { pool, conn: None }
    }

    async fn get(&mut self) -> Result<&mut PgConnection, StoreError> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.pool.acquire().await.map_err(StoreError::backend)?,
        };
        Ok(&mut **self.conn.insert(conn))
    }
}

/// One append waiting for a group commit: its events, encoded for the statement. The
/// caller keeps its own events, to append alone if the group cannot settle this.
struct GroupRequest {
    stream: String,
    expected: i64,
    ids: Vec<Uuid>,
    names: Vec<String>,
    versions: Vec<i32>,
    payloads: Vec<String>,
    metadata: Vec<String>,
}

impl GroupRequest {
    fn new(stream: &str, expected: i64, events: &[NewEvent]) -> Result<Self, StoreError> {
        Ok(Self {
            stream: stream.to_owned(),
            expected,
            ids: events.iter().map(|e| e.event_id).collect(),
            names: events.iter().map(|e| e.name.clone()).collect(),
            versions: events.iter().map(|e| event_version(e.version)).collect(),
            payloads: events.iter().map(|e| e.payload.get().to_owned()).collect(),
            metadata: encode_metadata(events)?,
        })
    }
}

impl Request for GroupRequest {
    fn stream(&self) -> &str {
        &self.stream
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

fn event_version(version: u32) -> i32 {
    i32::try_from(version).unwrap_or(i32::MAX)
}

fn encode_metadata(events: &[NewEvent]) -> Result<Vec<String>, StoreError> {
    events
        .iter()
        .map(|e| serde_json::to_string(&e.metadata))
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::backend)
}

impl Writer<GroupRequest> for PostgresStore {
    /// On a writer connection of its own; a connection that failed is closed, not reused.
    async fn write(&self, batch: &Batch<GroupRequest>) -> Vec<Outcome> {
        match self.writers.take().await {
            Ok(mut conn) => {
                let (outcomes, healthy) = append_group(&mut conn, &self.sql, batch).await;
                if healthy {
                    self.writers.give_back(conn);
                }
                outcomes
            }
            Err(error) => {
                tracing::debug!(%error, "no connection for a group commit");
                Vec::new()
            }
        }
    }
}

/// Writes a group commit's requests in one statement. A request gets `Done` when all its
/// events went in, `Alone` otherwise (its stream was not at the expected version, or the
/// statement failed); the caller then appends it alone, where conflicts and retried
/// appends are told apart. Also says whether the connection is still fit for use.
async fn append_group(
    conn: &mut PgConnection,
    sql: &Statements,
    batch: &Batch<GroupRequest>,
) -> (Vec<Outcome>, bool) {
    let total: usize = batch.requests().map(Request::len).sum();
    let rows = match batch.requests().next() {
        Some(one) if total == 1 => append_one(conn, sql, one).await,
        _ => append_many(conn, sql, batch, total).await,
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            tracing::debug!(%error, requests = batch.requests().len(), "group commit failed; each appends alone");
            return (Vec::new(), matches!(error, sqlx::Error::Database(_)));
        }
    };
    let outcomes = batch
        .requests()
        .map(|request| {
            let mut mine = rows.iter().filter(|row| row.0 == request.stream);
            let Some(&(_, version, position)) = mine.next() else {
                return Outcome::Alone;
            };
            let (mut count, mut last_version) = (1, version);
            let (mut first, mut last) = (position, position);
            for &(_, version, position) in mine {
                count += 1;
                last_version = last_version.max(version);
                first = first.min(position);
                last = last.max(position);
            }
            if count != request.len() {
                return Outcome::Alone;
            }
            Outcome::Done(AppendResult {
                stream_version: last_version as u64,
                first_position: first as u64,
                last_position: last as u64,
                already_stored: false,
            })
        })
        .collect();
    (outcomes, true)
}

/// A group of one append of one event, the usual case for a single client: the group
/// statement with scalars instead of arrays, which PostgreSQL runs faster.
async fn append_one(
    conn: &mut PgConnection,
    sql: &Statements,
    request: &GroupRequest,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    let ([id], [name], [version], [payload], [metadata]) = (
        &request.ids[..],
        &request.names[..],
        &request.versions[..],
        &request.payloads[..],
        &request.metadata[..],
    ) else {
        // Not one event after all: no rows, so the request appends alone.
        return Ok(Vec::new());
    };
    sqlx::query_as(&sql.append_one)
        .bind(&request.stream)
        .bind(request.expected)
        .bind(id)
        .bind(name)
        .bind(version)
        .bind(payload)
        .bind(metadata)
        .fetch_all(conn)
        .await
}

/// The group statement: every request's events as parallel arrays.
async fn append_many(
    conn: &mut PgConnection,
    sql: &Statements,
    batch: &Batch<GroupRequest>,
    total: usize,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    let mut streams = Vec::with_capacity(total);
    let mut expected = Vec::with_capacity(total);
    let mut n = Vec::with_capacity(total);
    let mut ids = Vec::with_capacity(total);
    let mut names = Vec::with_capacity(total);
    let mut versions = Vec::with_capacity(total);
    let mut payloads = Vec::with_capacity(total);
    let mut metadata = Vec::with_capacity(total);
    for request in batch.requests() {
        for i in 0..request.len() {
            streams.push(request.stream.as_str());
            expected.push(request.expected);
            n.push(i as i64 + 1);
        }
        ids.extend_from_slice(&request.ids);
        names.extend(request.names.iter().map(String::as_str));
        versions.extend_from_slice(&request.versions);
        payloads.extend(request.payloads.iter().map(String::as_str));
        metadata.extend(request.metadata.iter().map(String::as_str));
    }
    tracing::trace!(
        requests = batch.requests().len(),
        events = total,
        "group commit"
    );
    sqlx::query_as(&sql.append_group)
        .bind(&streams)
        .bind(&expected)
        .bind(&n)
        .bind(&ids)
        .bind(&names)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metadata)
        .fetch_all(conn)
        .await
}

/// Appends alone, in one statement; on a conflict, tells a retried append (its events are
/// already stored) from a real one.
async fn append(
    conn: &mut PgConnection,
    sql: &Statements,
    stream: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<AppendResult, StoreError> {
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    let versions: Vec<i32> = events.iter().map(|e| event_version(e.version)).collect();
    let payloads: Vec<&str> = events.iter().map(|e| e.payload.get()).collect();
    let metadata = encode_metadata(&events)?;
    let expected_param = match expected {
        ExpectedVersion::Any => -1,
        ExpectedVersion::NoStream => 0,
        ExpectedVersion::Exact(v) => to_i64(v),
    };
    // `Any` cannot conflict by definition: a lost race on the version key is retried.
    let mut races = 0;
    let conflict = loop {
        let row = sqlx::query_as::<_, (i64, Option<i64>, Option<i64>, Option<i64>)>(&sql.append)
            .bind(stream)
            .bind(expected_param)
            .bind(&ids)
            .bind(&names)
            .bind(&versions)
            .bind(&payloads)
            .bind(&metadata)
            .fetch_one(&mut *conn)
            .await;
        match row {
            Ok((_, Some(first), Some(last), Some(version))) => {
                return Ok(AppendResult {
                    stream_version: version as u64,
                    first_position: first as u64,
                    last_position: last as u64,
                    already_stored: false,
                });
            }
            Ok((actual, ..)) => {
                break StoreError::WrongExpectedVersion {
                    stream: stream.to_owned(),
                    expected,
                    actual: actual as u64,
                };
            }
            Err(e) if violated_constraint(&e) == Some("annals_events_stream_version_key") => {
                if expected == ExpectedVersion::Any && races < 100 {
                    races += 1;
                    continue;
                }
                let actual = stream_version(conn, sql, stream).await?;
                break StoreError::WrongExpectedVersion {
                    stream: stream.to_owned(),
                    expected,
                    actual,
                };
            }
            Err(e) if violated_constraint(&e) == Some("annals_events_event_id_key") => {
                break StoreError::backend(e);
            }
            Err(e) => return Err(StoreError::backend(e)),
        }
    };
    // Slow path only: a retried append carries a stale expected version or stored ids.
    let rows: Vec<(Uuid, String, i64, i64)> = sqlx::query_as(&sql.stored_ids)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::backend)?;
    let stored: Vec<_> = ids
        .iter()
        .map(|id| {
            rows.iter()
                .find(|r| r.0 == *id)
                .map(|r| (r.1.clone(), r.2 as u64, r.3 as u64))
        })
        .collect();
    match replayed_append(stream, &stored, &events)? {
        Some(original) => Ok(original),
        None => Err(conflict),
    }
}

async fn read_from_snapshot(
    conn: &mut PgConnection,
    sql: &Statements,
    stream: &str,
    fingerprint: u64,
    to: u64,
) -> Result<SnapshotRead, StoreError> {
    validate_stream_id(stream)?;
    let rows = sqlx::query(&sql.read_from_snapshot)
        .bind(stream)
        .bind(fingerprint as i64)
        .bind(to_i64(to))
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::backend)?;
    let mut read = SnapshotRead::default();
    read.events.reserve(rows.len());
    for row in &rows {
        let column = |e: sqlx::Error| {
            RawRecord::unreadable(stream.to_owned(), row.try_get(0).unwrap_or(0), e)
        };
        match row.try_get::<Option<i64>, _>(10).map_err(column)? {
            Some(version) => {
                read.snapshot = Some(SnapshotRecord {
                    stream_id: stream.to_owned(),
                    version: version as u64,
                    fingerprint: row.try_get::<i64, _>(11).map_err(column)? as u64,
                    state: row.try_get(12).map_err(column)?,
                    taken_at: row.try_get(13).map_err(column)?,
                })
            }
            None => read.events.push(decode_row(row)?),
        }
    }
    Ok(read)
}

/// A [`PostgresStore`] session: one pooled connection for a command's load and append,
/// checked out when first needed.
pub struct PostgresSession<'a> {
    conn: Lazy<'a>,
    store: &'a PostgresStore,
}

impl std::fmt::Debug for PostgresSession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSession")
            .field("schema", &self.store.schema())
            .field("connected", &self.conn.conn.is_some())
            .finish()
    }
}

impl StoreSession for PostgresSession<'_> {
    async fn read_stream(
        &mut self,
        stream: &str,
        range: VersionRange,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read_stream(self.conn.get().await?, &self.store.sql, stream, range).await
    }

    async fn fold_stream<F, E>(&mut self, stream: &str, range: VersionRange, f: F) -> Result<(), E>
    where
        F: FnMut(StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        fold_stream(self.conn.get().await?, &self.store.sql, stream, range, f).await
    }

    async fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.store
            .append_on(&mut self.conn, stream, expected, events)
            .await
    }

    async fn fold_all<F, E>(&mut self, after: Checkpoint, limit: usize, f: F) -> Result<usize, E>
    where
        F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        fold_all(self.conn.get().await?, &self.store.sql, after, limit, f).await
    }

    async fn read_from_snapshot(
        &mut self,
        stream: &str,
        fingerprint: u64,
        to: u64,
    ) -> Result<SnapshotRead, StoreError> {
        let conn = self.conn.get().await?;
        read_from_snapshot(conn, &self.store.sql, stream, fingerprint, to).await
    }
}

impl EventStore for PostgresStore {
    type Session<'a> = PostgresSession<'a>;

    async fn session(&self) -> Result<PostgresSession<'_>, StoreError> {
        Ok(PostgresSession {
            conn: Lazy::new(&self.own),
            store: self,
        })
    }

    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.append_on(&mut Lazy::new(&self.own), stream, expected, events)
            .await
    }

    async fn read_stream(
        &self,
        stream: &str,
        range: impl RangeBounds<u64> + Send,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        validate_stream_id(stream)?;
        read_stream(
            &mut *self.connection().await?,
            &self.sql,
            stream,
            VersionRange::new(range),
        )
        .await
    }

    async fn fold_stream<F, E>(&self, stream: &str, range: VersionRange, f: F) -> Result<(), E>
    where
        F: FnMut(StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        let mut conn = self.connection().await?;
        fold_stream(&mut conn, &self.sql, stream, range, f).await
    }

    async fn read_all(
        &self,
        after: Checkpoint,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(&self.sql.read_all)
            .bind(to_i64(after.transaction_id))
            .bind(to_i64(after.position))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *self.connection().await?)
            .await
            .map_err(StoreError::backend)?;
        rows.iter().map(decode_row).collect()
    }

    async fn fold_all<F, E>(&self, after: Checkpoint, limit: usize, f: F) -> Result<usize, E>
    where
        F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        // On a checked-out connection, as `read_all`: a pool's stream relays every row
        // through a second stream of its own, which cost more than decoding the row.
        fold_all(&mut *self.connection().await?, &self.sql, after, limit, f).await
    }

    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        validate_stream_id(stream)?;
        stream_version(&mut *self.connection().await?, &self.sql, stream).await
    }

    fn append_signal(&self) -> Option<watch::Receiver<u64>> {
        let receiver = self.appended.subscribe();
        self.ensure_listener();
        Some(receiver)
    }

    async fn read_from_snapshot(
        &self,
        stream: &str,
        fingerprint: u64,
        to: u64,
    ) -> Result<SnapshotRead, StoreError> {
        let mut conn = self.connection().await?;
        read_from_snapshot(&mut conn, &self.sql, stream, fingerprint, to).await
    }

    async fn read_snapshot(&self, stream: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        validate_stream_id(stream)?;
        let row: Option<(i64, i64, String, DateTime<Utc>)> =
            sqlx::query_as(&self.sql.read_snapshot)
                .bind(stream)
                .fetch_optional(&self.own)
                .await
                .map_err(StoreError::backend)?;
        Ok(
            row.map(|(version, fingerprint, state, taken_at)| SnapshotRecord {
                stream_id: stream.to_owned(),
                version: version as u64,
                fingerprint: fingerprint as u64,
                state,
                taken_at,
            }),
        )
    }

    async fn write_snapshot(&self, snapshot: SnapshotRecord) -> Result<(), StoreError> {
        validate_stream_id(&snapshot.stream_id)?;
        sqlx::query(&self.sql.write_snapshot)
            .bind(&snapshot.stream_id)
            .bind(to_i64(snapshot.version))
            .bind(snapshot.fingerprint as i64)
            .bind(&snapshot.state)
            .bind(snapshot.taken_at)
            .execute(&self.own)
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(valid_schema("public") && valid_schema("_tenant_7"));
        assert!(
            !valid_schema("")
                && !valid_schema("Bad")
                && !valid_schema("a;drop")
                && !valid_schema("7x")
        );
        assert!(!valid_schema(&"a".repeat(49)));
    }
}
