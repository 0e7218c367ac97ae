//! The store's errors: an operation that failed, and a store that could not be opened.

use uuid::Uuid;

use super::version::ExpectedVersion;

/// A storage failure, with the facts needed to act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream was not at the expected version: someone else appended first.
    #[error(
        "wrong expected version for stream `{stream}`: expected {expected}, found version {actual}"
    )]
    WrongExpectedVersion {
        /// The stream appended to.
        stream: String,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The stream's actual version (0 when it does not exist).
        actual: u64,
    },
    /// The stream id cannot be stored.
    #[error("invalid stream id {stream:?}: {reason}")]
    InvalidStreamId {
        /// The rejected id.
        stream: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An event name that cannot be stored; see [`validate_event_name`](crate::validate_event_name).
    #[error("invalid event name {name:?} in an append to stream `{stream}`: {reason}")]
    InvalidEventName {
        /// The stream appended to.
        stream: String,
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An append with no events.
    #[error("append to stream `{stream}` has no events")]
    EmptyAppend {
        /// The stream appended to.
        stream: String,
    },
    /// An event id is already stored, but not as part of an identical retry of this append
    /// (another stream, or only part of the batch).
    #[error(
        "event id {event_id} is already stored in stream `{existing_stream}` at version \
         {existing_version}; the append to `{stream}` is neither new nor a retry of that append"
    )]
    DuplicateEventId {
        /// The conflicting event id.
        event_id: Uuid,
        /// The stream appended to.
        stream: String,
        /// Where the id is already stored.
        existing_stream: String,
        /// Its version there.
        existing_version: u64,
    },
    /// The same event id appears twice in one append.
    #[error("event id {event_id} appears more than once in one append to stream `{stream}`")]
    DuplicateEventIdInBatch {
        /// The repeated event id.
        event_id: Uuid,
        /// The stream appended to.
        stream: String,
    },
    /// A stored row that cannot be read back (invalid JSON, an unreadable column, an
    /// out-of-range number). It is never skipped silently: a reader of the global order
    /// gets the events before it, then this error, whose checkpoint lets a consumer skip
    /// past the row on purpose (see [`Subscription::skip_past`](super::Subscription::skip_past)).
    #[error(
        "corrupt record at global position {position} of stream `{stream}`{}: {reason}",
        version_note(*stream_version)
    )]
    Corrupt {
        /// The stream holding the record.
        stream: String,
        /// The record's global position (0 when even that cannot be read).
        position: u64,
        /// The record's version in its stream, when it can be read.
        stream_version: Option<u64>,
        /// Where the record sits in the global order, when it can be read.
        checkpoint: Option<crate::event::Checkpoint>,
        /// What is wrong with it.
        reason: String,
    },
    /// A snapshot row that cannot be read back. Loads go on without it (snapshots are a
    /// cache); reading the snapshot itself reports it.
    #[error("corrupt snapshot of stream `{stream}`: {reason}")]
    CorruptSnapshot {
        /// The stream whose snapshot it is.
        stream: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value the store cannot hold exactly; nothing was written.
    #[error("cannot store {field} {value} in stream `{stream}`: the store holds at most {max}")]
    OutOfRange {
        /// The stream written to.
        stream: String,
        /// Which value (`stream version`, `event version`).
        field: &'static str,
        /// The value.
        value: u64,
        /// The largest value the store holds.
        max: u64,
    },
    /// Another writer held the store's write lock (another process on the same SQLite
    /// file) for longer than the store waits; nothing was written. Worth trying again:
    /// `Repository::execute` does.
    #[error(
        "the store is busy: another writer held its write lock past the wait allowed; nothing \
         was written to stream `{stream}`, try again"
    )]
    Busy {
        /// The stream appended to.
        stream: String,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An inline projection refused the append (its handler failed, or an event did not
    /// decode): nothing was written, neither the events nor any read model.
    #[error("the append to stream `{stream}` was refused by an inline projection: {source}")]
    Inline {
        /// The stream appended to.
        stream: String,
        /// What the projection reported, with the event.
        #[source]
        source: Box<crate::projection::ProjectionError>,
    },
    /// The store could not be opened; see [`OpenError`].
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The database failed (connection, I/O, constraint).
    #[error("storage backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// ", version N" for a message, when the version is known.
fn version_note(version: Option<u64>) -> String {
    version.map_or_else(String::new, |v| format!(" (stream version {v})"))
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(error))
    }
}

/// A store that could not be opened: its database, its schema, or the options given.
///
/// Returned by the stores' constructors (`SqliteStore::open`, `PostgresStore::connect`);
/// it converts into [`StoreError`], so `?` works in code that returns either.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The database server could not be reached.
    #[error(
        "cannot connect to {url}: {source}\n  start a server there, or give the URL of one that runs"
    )]
    Connect {
        /// The URL, without its password.
        url: String,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database file could not be opened or created.
    #[error("cannot open the SQLite database {path}: {source}")]
    File {
        /// The file, or the URL it was given as.
        path: String,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The schema could not be created or upgraded.
    #[error("cannot migrate the {backend} schema: {source}")]
    Migration {
        /// Which backend.
        backend: &'static str,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The schema was migrated by a newer release of annals, to a version this code does
    /// not know; nothing was changed.
    #[error(
        "the {backend} schema is at version {found}, but this release of annals knows versions up \
         to {known}: it was migrated by a newer release; run that release, or restore a backup \
         taken before the upgrade"
    )]
    SchemaTooNew {
        /// Which backend.
        backend: &'static str,
        /// The highest schema version recorded in the database.
        found: i64,
        /// The highest schema version this code knows.
        known: i64,
    },
    /// The schema's events were written by another PostgreSQL cluster (it was restored from a
    /// dump or a copy) whose transaction ids are ahead of this cluster's. Events sort by the
    /// transaction id that wrote them, so events appended now would sort before the stored
    /// ones, and subscribers and read models past those would never see them. Nothing was
    /// changed. Advance this cluster's transaction ids past the stored ones with
    /// `pg_resetwal`, then open the store again.
    #[error(
        "the events in schema {schema} were written by transactions up to {stored}, but this \
         PostgreSQL cluster (system identifier {cluster}) is at transaction {next}: the schema \
         was restored from another cluster{}, and events appended now would sort before the \
         stored ones, unseen by subscribers past them. Stop the server, run \
         `pg_resetwal -e {} -x {} <data directory>`, start it and open the store again",
        recorded.map(|from| format!(" (system identifier {from})")).unwrap_or_default(),
        advance >> 32,
        advance & 0xffff_ffff
    )]
    TransactionIdsBehind {
        /// The schema.
        schema: String,
        /// The highest transaction id among the stored events.
        stored: u64,
        /// This cluster's next transaction id.
        next: u64,
        /// This cluster's system identifier.
        cluster: u64,
        /// The system identifier of the cluster the schema was last opened on, when recorded.
        recorded: Option<u64>,
        /// A transaction id past `stored` that `pg_resetwal` can start from: its epoch is
        /// `advance >> 32` (`-e`) and its id within the epoch `advance & 0xffff_ffff` (`-x`).
        advance: u64,
    },
    /// A schema name that is not a plain lowercase identifier.
    #[error(
        "invalid schema name {schema:?}: use lowercase letters, digits and `_`, at most 48 characters"
    )]
    InvalidSchema {
        /// The rejected name.
        schema: String,
    },
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl OpenError {
    /// The error of a migration run on `backend` that was refused or failed.
    pub(crate) fn refused(backend: &'static str, refused: super::sql::Refused) -> Self {
        match refused {
            super::sql::Refused::Sql(source) => Self::Migration {
                backend,
                source: Box::new(source),
            },
            super::sql::Refused::TooNew { found, known } => Self::SchemaTooNew {
                backend,
                found,
                known,
            },
        }
    }
}
