//! The PostgreSQL store: production storage with a hole-free global order.

mod append;
mod cluster;
mod columns;
mod dead_letters;
mod dialect;
mod group;
mod inline;
mod leases;
mod migrate;
mod notify;
mod options;
mod projection_sql;
mod projections;
mod read;
mod session;
mod shards;
mod snapshot;
mod statements;
mod tables;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use tokio::sync::{mpsc, watch};

use crate::projection::InlineSet;
use crate::store::group::Coalescer;
use crate::store::{EventStore, OpenError, StoreError};
use group::{GROUP_MAX_EVENTS, GroupRequest, Writers};
use options::DEFAULT_GROUP_WRITERS;
use session::Lazy;
use statements::Statements;

pub use options::PostgresOptions;
pub use session::PostgresSession;

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
    /// The projections' connections: commits without waiting for the disk. A read model
    /// commits with its checkpoint, so a commit a crash loses is lost whole, and the
    /// runner applies those events again: derived data needs no flush of its own.
    projector: PgPool,
    /// The connections SQL-table projections write on: the server's planner settings, as
    /// for your own queries, and commits that do not wait for the disk (see `projector`).
    tables: PgPool,
    sql: Arc<Statements>,
    group: Arc<Coalescer<GroupRequest>>,
    writers: Arc<Writers>,
    appended: Arc<watch::Sender<u64>>,
    /// Asks the notifier task to tell other processes; full means one is already due.
    notify: mpsc::Sender<()>,
    listening: Arc<AtomicBool>,
    /// The check of each new connection's cluster (see `cluster::Guard`).
    cluster: Arc<cluster::Guard>,
    /// The projections' SQL.
    projections: Arc<projection_sql::Sql>,
    /// The projections applied inside each append.
    inline: InlineSet,
}

/// Connections of the projections' pool.
const PROJECTOR_CONNECTIONS: u32 = 2;

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
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        Self::connect_with(PostgresOptions::new(url)).await
    }

    /// Connects with `options` and creates or upgrades the schema.
    pub async fn connect_with(options: PostgresOptions) -> Result<Self, OpenError> {
        let connect_error = |source: sqlx::Error| OpenError::Connect {
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
    pub async fn from_pool(pool: PgPool, schema: &str) -> Result<Self, OpenError> {
        Self::open(pool, schema, DEFAULT_GROUP_WRITERS).await
    }

    async fn open(pool: PgPool, schema: &str, writers: usize) -> Result<Self, OpenError> {
        if !valid_schema(schema) {
            return Err(OpenError::InvalidSchema {
                schema: schema.to_owned(),
            });
        }
        let sql = Statements::new(schema);
        let own_options = (*pool.connect_options())
            .clone()
            .options(OWN_PLANNER_SETTINGS);
        let guard = Arc::new(cluster::Guard::new(schema));
        let on_connect = Arc::clone(&guard);
        let own = pool_options(pool.options().get_max_connections())
            .after_connect(move |conn, _| {
                let guard = Arc::clone(&on_connect);
                Box::pin(async move { guard.on_connect(conn).await })
            })
            .connect_lazy_with(own_options.clone());
        migrate::migrate(&own, schema).await?;
        cluster::check(&own, schema).await?;
        guard.arm();
        // Writers run the group append only, whose custom plans cost more to make than to
        // run: a generic plan is made once per connection.
        // Few connections, so that they stay in use: a pool below its size opens a new
        // connection for a request that comes before the last one was handed back, and a
        // runner's batch makes several requests in a row.
        let projector = pool_options(PROJECTOR_CONNECTIONS).connect_lazy_with(
            own_options
                .clone()
                .options([("synchronous_commit", "off"), ("jit", "off")]),
        );
        let tables = pool_options(pool.options().get_max_connections().clamp(2, 8))
            .connect_lazy_with(
                (*pool.connect_options())
                    .clone()
                    .options([("synchronous_commit", "off")]),
            );
        let writer_options = own_options.options([("plan_cache_mode", "force_generic_plan")]);
        let (notify, pokes) = mpsc::channel(1);
        tokio::spawn(notify::notify_others(
            own.clone(),
            sql.channel.clone(),
            pokes,
        ));
        Ok(Self {
            pool,
            own,
            projector,
            tables,
            projections: Arc::new(projection_sql::Sql::new(schema)),
            inline: InlineSet::default(),
            sql: Arc::new(sql),
            group: Arc::new(Coalescer::new(writers, GROUP_MAX_EVENTS)),
            writers: Arc::new(Writers::new(writer_options, writers, Arc::clone(&guard))),
            cluster: guard,
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
}

impl EventStore for PostgresStore {
    type Session<'a> = PostgresSession<'a>;

    async fn session(&self) -> Result<PostgresSession<'_>, StoreError> {
        Ok(PostgresSession {
            conn: Lazy::new(&self.own, &self.cluster),
            store: self,
        })
    }

    fn append_signal(&self) -> Option<watch::Receiver<u64>> {
        let receiver = self.appended.subscribe();
        self.ensure_listener();
        Some(receiver)
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
