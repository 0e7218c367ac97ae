//! Snapshots in the SQLite store: read with the events after them in one query, written
//! on the writer connection.

use sqlx::Sqlite;

use super::SqliteStore;
use super::dialect::micros;
use super::statements::{READ_FROM_SNAPSHOT, READ_SNAPSHOT, WRITE_SNAPSHOT};
use crate::store::sql::{
    SnapshotRows, bound, snapshot_from_row, split_snapshot_rows, storable, to_fingerprint,
};
use crate::store::{SnapshotRecord, StoreError, validate_stream_id};

impl SqliteStore {
    /// The rows of a load from a snapshot, split; see [`READ_FROM_SNAPSHOT`].
    pub(super) async fn read_from_snapshot(
        &self,
        stream: &str,
        fingerprint: u64,
        to: u64,
    ) -> Result<SnapshotRows, StoreError> {
        validate_stream_id(stream)?;
        let rows = sqlx::query(READ_FROM_SNAPSHOT)
            .bind(stream)
            .bind(to_fingerprint(fingerprint))
            .bind(bound(to))
            .fetch_all(&self.reader)
            .await
            .map_err(StoreError::backend)?;
        split_snapshot_rows::<Sqlite>(stream, &rows)
    }

    pub(super) async fn read_snapshot(
        &self,
        stream: &str,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        validate_stream_id(stream)?;
        let row = sqlx::query(READ_SNAPSHOT)
            .bind(stream)
            .fetch_optional(&self.reader)
            .await
            .map_err(StoreError::backend)?;
        row.map(|row| snapshot_from_row::<Sqlite>(stream, &row, 0))
            .transpose()
    }

    pub(super) async fn write_snapshot(&self, snapshot: SnapshotRecord) -> Result<(), StoreError> {
        validate_stream_id(&snapshot.stream_id)?;
        let version = storable(&snapshot.stream_id, "snapshot version", snapshot.version)?;
        sqlx::query(WRITE_SNAPSHOT)
            .bind(&snapshot.stream_id)
            .bind(version)
            .bind(to_fingerprint(snapshot.fingerprint))
            .bind(&snapshot.state)
            .bind(micros(snapshot.taken_at))
            .execute(&self.writer)
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }
}
