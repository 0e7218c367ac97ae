//! The SQLite session: the store's operations, each on the connection it needs (one
//! writer, a pool of readers).

use super::statements::{READ_STREAM, STREAM_VERSION};
use super::{SqliteStore, read};
use crate::event::{Checkpoint, NewEvent, RecordedEvent, StoredEvent};
use crate::store::sql::{self, SnapshotRows, without_snapshot};
use crate::store::{
    AppendResult, ExpectedVersion, SnapshotRead, SnapshotRecord, StoreError, StoreSession,
    VersionRange, validate_stream_id,
};

/// A [`SqliteStore`] session. SQLite has one writer, which appends take in turn, and reads
/// go through the pool of readers, so the session holds no connection of its own.
#[derive(Debug)]
pub struct SqliteSession<'a>(pub(super) &'a SqliteStore);

impl StoreSession for SqliteSession<'_> {
    async fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.0.append(stream, expected, events).await
    }

    async fn read_stream(
        &mut self,
        stream: &str,
        range: VersionRange,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        sql::read_stream(&self.0.reader, READ_STREAM, stream, range).await
    }

    async fn fold_stream<F, E>(&mut self, stream: &str, range: VersionRange, f: F) -> Result<(), E>
    where
        F: FnMut(StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        read::fold_stream(&self.0.reader, stream, range, f).await
    }

    async fn read_all(
        &mut self,
        after: Checkpoint,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_all(&self.0.reader, after, limit).await
    }

    async fn fold_all<F, E>(&mut self, after: Checkpoint, limit: usize, f: F) -> Result<usize, E>
    where
        F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E> + Send,
        E: From<StoreError> + Send,
    {
        read::fold_all(&self.0.reader, after, limit, f).await
    }

    async fn stream_version(&mut self, stream: &str) -> Result<u64, StoreError> {
        validate_stream_id(stream)?;
        sql::stream_version(&self.0.reader, STREAM_VERSION, stream)
            .await
            .map_err(StoreError::backend)?
    }

    async fn read_from_snapshot(
        &mut self,
        stream: &str,
        fingerprint: u64,
        to: u64,
    ) -> Result<SnapshotRead, StoreError> {
        match self.0.read_from_snapshot(stream, fingerprint, to).await? {
            SnapshotRows::Read(read) => Ok(read),
            SnapshotRows::Unreadable(error) => without_snapshot(self, stream, to, error).await,
        }
    }

    async fn read_snapshot(&mut self, stream: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        self.0.read_snapshot(stream).await
    }

    async fn write_snapshot(&mut self, snapshot: SnapshotRecord) -> Result<(), StoreError> {
        self.0.write_snapshot(snapshot).await
    }
}
