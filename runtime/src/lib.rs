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
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod coalesce;
mod event;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod repository;
pub mod schema;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod subscription;
pub mod testing;

pub use aggregate::{Aggregate, Handle, IntoEvents, Snapshot};
pub use annals_macros::{Event, Snapshot, aggregate, apply, command};
#[doc(hidden)]
pub use event::PreviousEvent;
pub use event::{
    Checkpoint, DecodeError, DecodeErrorKind, Envelope, Event, EventSet, Metadata, NewEvent,
    NoPrevious, RecordedEvent,
};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresSession, PostgresStore};
pub use repository::{
    CommandContext, DEFAULT_MAX_ATTEMPTS, Error, ExecuteError, Executed, Loaded, Repository,
};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use store::{
    AppendResult, EventStore, ExpectedVersion, MAX_STREAM_ID_LEN, SharedSession, SnapshotRead,
    SnapshotRecord, StoreError, StoreSession, StoredEvent, VersionRange, validate_stream_id,
};
pub use subscription::{Subscription, SubscriptionOptions};

/// Re-exported: `recorded_at` and `load_as_of` use its types.
pub use chrono;
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
        NewEvent, RecordedEvent, Repository, Snapshot, aggregate, apply, command,
    };
    pub use serde::{Deserialize, Serialize};
}

/// Support for the code the macros generate. Not public API: may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use core::convert::Infallible;
    pub use core::future::{Ready, ready};
    pub use core::result::Result;
    pub use std::vec::Vec;

    pub use crate::event::{chain_of, decode_chain};
    pub use crate::schema::EventType;
    pub use inventory;

    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::value::RawValue;

    /// Serialises one variant of an event set.
    pub fn encode<T: Serialize>(event: &T) -> Result<Box<RawValue>, serde_json::Error> {
        serde_json::value::to_raw_value(event)
    }

    /// Collects what a fallible command returned. `into_events` is the user's return type's
    /// `IntoEvents::into_events`, named at that type so a missing impl is reported there.
    pub fn fallible<E, T, Err>(
        result: Result<T, Err>,
        into_events: fn(T, &mut Vec<E>),
    ) -> Result<Vec<E>, Err> {
        result.map(|t| {
            let mut out = Vec::new();
            into_events(t, &mut out);
            out
        })
    }

    /// Collects what an infallible command returned.
    pub fn infallible<E, T>(t: T, into_events: fn(T, &mut Vec<E>)) -> Result<Vec<E>, Infallible> {
        fallible(Ok(t), into_events)
    }

    /// The boxed JSON an event set encodes to.
    pub type RawPayload = Box<RawValue>;

    /// Commands taken by value are cloned for each attempt of a retried command.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` must implement `Clone` to be taken by value in a `#[command]`",
        label = "taken by value",
        note = "a command is run again when a concurrent append conflicts: derive `Clone`, or take `&{Self}`"
    )]
    pub trait RetryableCommand: Sized {
        /// A copy of the command for one attempt.
        fn clone_for_attempt(&self) -> Self;
    }
    impl<T: Clone> RetryableCommand for T {
        fn clone_for_attempt(&self) -> Self {
            self.clone()
        }
    }

    /// A version check's outcome, as a type: only `Check<true>` implements the check traits.
    pub struct Check<const OK: bool>;

    /// The upcaster `#[event(previous = ...)]` calls: any `From<Prev>` impl.
    #[diagnostic::on_unimplemented(
        message = "no upcaster from `{Prev}` (v{PV}) to `{Self}` (v{CV})",
        label = "`{Self}` names `{Prev}` as its previous version",
        note = "write the upcaster: `impl From<{Prev}> for {Self}`"
    )]
    pub trait Upcaster<Prev, const PV: u32, const CV: u32>: Sized {
        /// Converts one event of the previous version.
        fn upcast(previous: Prev) -> Self;
    }
    impl<Prev, Cur: From<Prev>, const PV: u32, const CV: u32> Upcaster<Prev, PV, CV> for Cur {
        fn upcast(previous: Prev) -> Self {
            Cur::from(previous)
        }
    }

    /// Rule: a chain holds each version once.
    #[diagnostic::on_unimplemented(
        message = "duplicate version {CV} in the chain of `{Cur}`: its previous version `{Prev}` is also v{PV}",
        label = "also v{PV}",
        note = "give every version of an event its own number, counting up from 1"
    )]
    pub trait DistinctVersion<Prev, Cur, const PV: u32, const CV: u32> {}
    impl<Prev, Cur, const PV: u32, const CV: u32> DistinctVersion<Prev, Cur, PV, CV> for Check<true> {}

    /// Rule: a predecessor's version is lower than its successor's.
    #[diagnostic::on_unimplemented(
        message = "`{Prev}` (v{PV}) cannot be the previous version of `{Cur}` (v{CV}): its version must be lower",
        label = "v{PV} is newer than v{CV}",
        note = "`previous` names the older type; swap the two types' `version` numbers if they are reversed"
    )]
    pub trait LowerVersion<Prev, Cur, const PV: u32, const CV: u32> {}
    impl<Prev, Cur, const PV: u32, const CV: u32> LowerVersion<Prev, Cur, PV, CV> for Check<true> {}

    /// Rule: versions in a chain are contiguous, unless the successor says `allow_gap`.
    #[diagnostic::on_unimplemented(
        message = "version gap in the chain of `{Cur}`: `{Prev}` is v{PV} and `{Cur}` is v{CV}",
        label = "versions between v{PV} and v{CV} are missing",
        note = "declare the missing versions, or add `allow_gap` to `#[event(...)]` on `{Cur}` if they never existed"
    )]
    pub trait NoGap<Prev, Cur, const PV: u32, const CV: u32> {}
    impl<Prev, Cur, const PV: u32, const CV: u32> NoGap<Prev, Cur, PV, CV> for Check<true> {}

    /// Rule: a predecessor with another stored name needs `renamed` on the successor.
    #[diagnostic::on_unimplemented(
        message = "`{Prev}` (v{PV}) is stored under another name than `{Cur}` (v{CV})",
        label = "another event name",
        note = "add `renamed` to `#[event(...)]` on `{Cur}` if the rename is intended"
    )]
    pub trait SameName<Prev, Cur, const PV: u32, const CV: u32> {}
    impl<Prev, Cur, const PV: u32, const CV: u32> SameName<Prev, Cur, PV, CV> for Check<true> {}

    /// Probes for the rules above: `#[derive(Event)]` calls each with the check's outcome.
    pub const fn distinct_version<
        C: DistinctVersion<P, N, PV, CV>,
        P,
        N,
        const PV: u32,
        const CV: u32,
    >() {
    }
    /// See [`distinct_version`].
    pub const fn lower_version<
        C: LowerVersion<P, N, PV, CV>,
        P,
        N,
        const PV: u32,
        const CV: u32,
    >() {
    }
    /// See [`distinct_version`].
    pub const fn no_gap<C: NoGap<P, N, PV, CV>, P, N, const PV: u32, const CV: u32>() {}
    /// See [`distinct_version`].
    pub const fn same_name<C: SameName<P, N, PV, CV>, P, N, const PV: u32, const CV: u32>() {}

    // Bounded by serde only: a missing `Snapshot` derive is reported once, at the
    // fingerprint, not again at each helper.
    /// Serialises a snapshot state.
    pub fn encode_snapshot<T: Serialize>(state: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(state)
    }

    /// Deserialises a snapshot state.
    pub fn decode_snapshot<T: DeserializeOwned>(state: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str(state)
    }

    /// Combines the state type's fingerprint with the aggregate's (FNV-1a over both), at
    /// compile time.
    pub const fn fingerprint(state: u64, aggregate: u64) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let bytes = [state.to_le_bytes(), aggregate.to_le_bytes()];
        let mut i = 0;
        while i < 16 {
            hash ^= bytes[i / 8][i % 8] as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            i += 1;
        }
        hash
    }

    /// Implemented for an event type by the derive of the type that names it as `previous`:
    /// it is an old version, and an aggregate must apply the newest one of its chain (whose
    /// decoding upcasts the old one). One old version has one successor.
    pub trait Superseded {}

    /// `<SupersededProbe<T>>::SUPERSEDED` is `true` when `T: Superseded`: the inherent
    /// constant exists only then, and takes precedence over the trait's default.
    pub struct SupersededProbe<T: ?Sized>(core::marker::PhantomData<T>);

    /// The fallback for [`SupersededProbe`].
    pub trait NotSuperseded {
        /// Not superseded, unless the inherent constant says otherwise.
        const SUPERSEDED: bool = false;
    }
    impl<T: ?Sized> NotSuperseded for SupersededProbe<T> {}
    impl<T: ?Sized + Superseded> SupersededProbe<T> {
        /// Superseded.
        pub const SUPERSEDED: bool = true;
    }

    /// `a == b` for strings, usable in constants (duplicate event name checks).
    pub const fn str_eq(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
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

    // Opens SQLite stores and connects to the PostgreSQL server at DATABASE_URL (default
    // postgres://postgres@127.0.0.1:5432/test), each snippet in a fresh schema it drops.
    #[cfg(all(feature = "sqlite", feature = "postgres"))]
    #[doc = include_str!("../../book/src/storage-backends.md")]
    pub struct StorageBackends;
}
