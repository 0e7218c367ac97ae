//! Event sourcing and CQRS for Rust: annotate plain domain types, the macros generate the rest.
//!
//! Start with the [book](https://github.com/annals-rs/annals/tree/main/book) or the
//! [`prelude`]. The pieces:
//! - [`Event`] (derive it) and [`macro@aggregate`] (on an `impl` block with `#[command]` and
//!   `#[apply]` methods) describe the domain;
//! - [`EventStore`] is the log, with [`MemoryStore`], [`SqliteStore`] (feature `sqlite`, on by
//!   default) and `PostgresStore` (feature `postgres`) backends, and [`Subscription`]s to it;
//! - [`Repository`] loads aggregates and executes commands with optimistic concurrency;
//! - [`testing::AggregateTest`] tests decisions given/when/then;
//! - [`schema`] lists every event type with its upcasting chain and checks a store against it.

// Lets the runtime's own tests and doc tests use the macros, which emit `::annals::` paths.
extern crate self as annals;

mod aggregate;
mod command;
mod event;
pub mod projection;
mod repository;
pub mod schema;
mod store;
pub mod testing;

#[doc(hidden)]
#[path = "private/mod.rs"]
pub mod __private;

pub use aggregate::{Aggregate, Handle, IntoEvents, Snapshot};
pub use annals_macros::{Event, Snapshot, aggregate, apply, command, handle, projection};
pub use command::CommandContext;
#[doc(hidden)]
pub use event::PreviousEvent;
pub use event::{
    Checkpoint, DecodeError, DecodeErrorKind, Envelope, Event, EventSet, InvalidEventName,
    MAX_EVENT_NAME_LEN, MAX_EVENT_VERSION, Metadata, NewEvent, NoPrevious, RecordedEvent,
    StoredEvent, UpcastFrom, validate_event_name,
};
pub use repository::{
    DEFAULT_MAX_ATTEMPTS, ExecuteError, Executed, Loaded, Repository, RepositoryError,
};

/// The repository's error, by its old name.
#[deprecated(note = "renamed to `RepositoryError`")]
pub type Error = RepositoryError;
pub use store::memory::{MemorySession, MemoryStore};
#[cfg(feature = "postgres")]
pub use store::postgres::{PostgresOptions, PostgresSession, PostgresStore};
#[cfg(feature = "sqlite")]
pub use store::sqlite::{SqliteSession, SqliteStore};
pub use store::{
    AppendResult, EventStore, ExpectedVersion, MAX_STREAM_ID_LEN, OpenError, SnapshotRead,
    SnapshotRecord, StoreError, StoreSession, Subscription, SubscriptionOptions, VersionRange,
    validate_stream_id,
};

/// Re-exported: `recorded_at` and `load_as_of` use its types.
pub use chrono;
/// Re-exported for SQL projections, whose handlers take a `sqlx::Transaction` and read
/// their tables with `sqlx`: the same version annals runs on.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sqlx;
/// Re-exported so users need no direct dependency for what the generated code and the
/// examples use.
pub use {serde, serde_json, uuid};

/// The names almost every user of annals needs.
///
/// ```
/// use annals::prelude::*;
/// ```
pub mod prelude {
    pub use crate::{
        Aggregate, CommandContext, Event, EventSet, EventStore, ExecuteError, ExpectedVersion,
        NewEvent, RecordedEvent, Repository, Snapshot, aggregate, apply, command, handle,
        projection,
    };
    pub use serde::{Deserialize, Serialize};
}

/// The book's chapters, compiled and run as doc tests so every snippet stays true.
#[cfg(doctest)]
mod book {
    #[doc = include_str!("../../book/src/introduction.md")]
    pub struct Introduction;

    #[doc = include_str!("../../book/src/performance.md")]
    pub struct Performance;

    // The pages below open SQLite stores.
    #[cfg(feature = "sqlite")]
    #[doc = include_str!("../../README.md")]
    pub struct Readme;

    #[cfg(feature = "sqlite")]
    #[doc = include_str!("../../book/src/quick-start.md")]
    pub struct QuickStart;

    #[cfg(feature = "sqlite")]
    #[doc = include_str!("../../book/src/aggregates-and-commands.md")]
    pub struct AggregatesAndCommands;

    #[cfg(feature = "sqlite")]
    #[doc = include_str!("../../book/src/event-stores.md")]
    pub struct EventStores;

    #[doc = include_str!("../../book/src/evolving-events.md")]
    pub struct EvolvingEvents;
    #[doc = include_str!("../../book/src/snapshots-and-time-travel.md")]
    pub struct SnapshotsAndTimeTravel;

    #[cfg(feature = "sqlite")]
    #[doc = include_str!("../../book/src/projections.md")]
    pub struct Projections;

    #[cfg(feature = "sqlite")]
    #[doc = include_str!("../../book/src/running-projections.md")]
    pub struct RunningProjections;

    // Opens SQLite stores and connects to the PostgreSQL server at DATABASE_URL (default
    // postgres://postgres@127.0.0.1:5432/test), each snippet in a fresh schema it drops.
    #[cfg(all(feature = "sqlite", feature = "postgres"))]
    #[doc = include_str!("../../book/src/storage-backends.md")]
    pub struct StorageBackends;
}
