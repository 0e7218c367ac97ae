//! Snapshots in a PostgreSQL store: read with the events after them in one statement.

use sqlx::Postgres;
use sqlx::postgres::PgConnection;

use super::statements::Statements;
use crate::store::sql::{
    SnapshotRows, bound, snapshot_from_row, split_snapshot_rows, storable, to_fingerprint,
};
use crate::store::{SnapshotRecord, StoreError, validate_stream_id};

/// The rows of a load from a snapshot, split; see `Statements::read_from_snapshot`.
pub(super) async fn read_from_snapshot(
    conn: &mut PgConnection,
    sql: &Statements,
    stream: &str,
    fingerprint: u64,
    to: u64,
) -> Result<SnapshotRows, StoreError> {
    validate_stream_id(stream)?;
    let rows = sqlx::query(&sql.read_from_snapshot)
        .bind(stream)
        .bind(to_fingerprint(fingerprint))
        .bind(bound(to))
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::backend)?;
    split_snapshot_rows::<Postgres>(stream, &rows)
}

pub(super) async fn read_snapshot(
    conn: &mut PgConnection,
    sql: &Statements,
    stream: &str,
) -> Result<Option<SnapshotRecord>, StoreError> {
    validate_stream_id(stream)?;
    let row = sqlx::query(&sql.read_snapshot)
        .bind(stream)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::backend)?;
    row.map(|row| snapshot_from_row::<Postgres>(stream, &row, 0))
        .transpose()
}

pub(super) async fn write_snapshot(
    conn: &mut PgConnection,
    sql: &Statements,
    snapshot: SnapshotRecord,
) -> Result<(), StoreError> {
    validate_stream_id(&snapshot.stream_id)?;
    let version = storable(&snapshot.stream_id, "snapshot version", snapshot.version)?;
    sqlx::query(&sql.write_snapshot)
        .bind(&snapshot.stream_id)
        .bind(version)
        .bind(to_fingerprint(snapshot.fingerprint))
        .bind(&snapshot.state)
        .bind(snapshot.taken_at)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::backend)?;
    Ok(())
}
