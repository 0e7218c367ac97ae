//! The session: one connection's worth of operations, which every backend implements once.

use std::future::Future;

use crate::event::{Checkpoint, NewEvent, RecordedEvent, StoredEvent};

use super::error::StoreError;
use super::snapshot::{SnapshotRead, SnapshotRecord};
use super::version::{AppendResult, ExpectedVersion, VersionRange};

/// The operations of a store on one connection; see [`EventStore::session`].
///
/// This is what a backend implements: each [`EventStore`] method of the same name opens a
/// session and calls it, and the repository runs a whole command (load, append, retries)
/// on one. The methods have the semantics documented on [`EventStore`]. Those with a
/// default here are derived from the required ones; a backend overrides them when it can
/// do better (a lean read, a snapshot table).
///
/// [`EventStore`]: super::EventStore
/// [`EventStore::session`]: super::EventStore::session
pub trait StoreSession: Send {
    /// See [`EventStore::append`](super::EventStore::append).
    fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendResult, StoreError>> + Send;

    /// See [`EventStore::read_stream`](super::EventStore::read_stream).
    fn read_stream(
        &mut self,
        stream: &str,
        range: VersionRange,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// See [`EventStore::fold_stream`](super::EventStore::fold_stream). The default goes
    /// through [`read_stream`](Self::read_stream).
    fn fold_stream<F, E>(
        &mut self,
        stream: &str,
        range: VersionRange,
        mut f: F,
    ) -> impl Future<Output = Result<(), E>> + Send
    where
        F: FnMut(StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        async move {
            let records = self.read_stream(stream, range).await?;
            records.iter().try_for_each(|r| f(StoredEvent::of(r)))
        }
    }

    /// See [`EventStore::read_all`](super::EventStore::read_all).
    fn read_all(
        &mut self,
        after: Checkpoint,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// See [`EventStore::fold_all`](super::EventStore::fold_all). The default goes through
    /// [`read_all`](Self::read_all).
    fn fold_all<F, E>(
        &mut self,
        after: Checkpoint,
        limit: usize,
        mut f: F,
    ) -> impl Future<Output = Result<usize, E>> + Send
    where
        F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        async move {
            let records = self.read_all(after, limit).await?;
            for record in &records {
                f(record.checkpoint(), StoredEvent::of(record))?;
            }
            Ok(records.len())
        }
    }

    /// See [`EventStore::stream_version`](super::EventStore::stream_version).
    fn stream_version(
        &mut self,
        stream: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// See [`EventStore::read_from_snapshot`](super::EventStore::read_from_snapshot). The
    /// default, for stores that keep no snapshots, reads the events only.
    fn read_from_snapshot(
        &mut self,
        stream: &str,
        fingerprint: u64,
        to: u64,
    ) -> impl Future<Output = Result<SnapshotRead, StoreError>> + Send {
        let _ = fingerprint;
        async move {
            Ok(SnapshotRead {
                snapshot: None,
                events: self.read_stream(stream, VersionRange::new(..=to)).await?,
            })
        }
    }

    /// See [`EventStore::read_snapshot`](super::EventStore::read_snapshot). The default,
    /// for stores that keep no snapshots, finds none.
    fn read_snapshot(
        &mut self,
        stream: &str,
    ) -> impl Future<Output = Result<Option<SnapshotRecord>, StoreError>> + Send {
        let _ = stream;
        async { Ok(None) }
    }

    /// See [`EventStore::write_snapshot`](super::EventStore::write_snapshot). The default,
    /// for stores that keep no snapshots, does nothing.
    fn write_snapshot(
        &mut self,
        snapshot: SnapshotRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        drop(snapshot);
        async { Ok(()) }
    }
}
