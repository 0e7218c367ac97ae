//! Stored rows into records. The backends' queries return these columns, in this order:
//!
//! - a lean row (`fold_stream`): stream_version, position, event_name, event_version,
//!   payload; a lean row of the global order (`fold_all`) adds stream_id, transaction_id;
//! - a record (`read_stream`, `read_all`): position, transaction_id, stream_id,
//!   stream_version, event_id, event_name, event_version, payload, metadata, recorded_at
//!   (where positions are commit order, the position stands in for the transaction id);
//! - a snapshot: version, fingerprint, state, taken_at; in a load from a snapshot, these
//!   follow a record's columns, NULL on event rows, and the event columns are NULL on the
//!   snapshot's row.

use std::future::poll_fn;

use futures_core::stream::BoxStream;
use serde_json::value::RawValue;

use super::Dialect;
use super::convert::{from_fingerprint, stored};
use crate::event::{Checkpoint, RecordedEvent, StoredEvent};
use crate::store::{SnapshotRead, SnapshotRecord, StoreError, StoreSession, VersionRange};

/// Where a load from a snapshot finds the snapshot's columns.
const SNAPSHOT_AT: usize = 10;

/// A `Corrupt` error for the row at `position` of `stream`.
fn corrupt(stream: &str, position: i64, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        stream: stream.to_owned(),
        position: u64::try_from(position).unwrap_or(0),
        reason: reason.to_string(),
    }
}

/// A `Corrupt` error for the row at `position` of `stream`, the position already checked.
fn corrupt_at(stream: &str, position: u64, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        stream: stream.to_owned(),
        position,
        reason: reason.to_string(),
    }
}

impl<'r> StoredEvent<'r> {
    /// Reads a lean row of `stream`; a missing or out-of-range value is a `Corrupt` error
    /// naming the row.
    pub(crate) fn from_row<D: Dialect>(
        stream: &'r str,
        row: &'r D::Row,
    ) -> Result<Self, StoreError> {
        let position = D::int(row, 1).map_err(|e| corrupt(stream, 0, e))?;
        let get = |e: sqlx::Error| corrupt(stream, position, e);
        let version = D::int(row, 3).map_err(get)?;
        Ok(Self::lean(
            stream,
            stored(
                stream,
                position,
                "stream version",
                D::int(row, 0).map_err(get)?,
            )?,
            stored(stream, position, "position", position)?,
            D::text(row, 2).map_err(get)?,
            u32::try_from(version).map_err(|_| {
                corrupt(
                    stream,
                    position,
                    format!("event version {version} out of range"),
                )
            })?,
            D::text(row, 4).map_err(get)?,
        ))
    }

    /// Reads a lean row of the global order, with its checkpoint.
    pub(crate) fn from_global_row<D: Dialect>(
        row: &'r D::Row,
    ) -> Result<(Checkpoint, Self), StoreError> {
        // The position is read once, by `from_row`; only an unreadable stream id needs it
        // here, for its error.
        let stream = D::text(row, 5).map_err(|e| corrupt("", D::int(row, 1).unwrap_or(0), e))?;
        let event = Self::from_row::<D>(stream, row)?;
        let transaction = D::int(row, 6).map_err(|e| corrupt_at(stream, event.position, e))?;
        let checkpoint = Checkpoint {
            transaction_id: u64::try_from(transaction).map_err(|_| {
                corrupt_at(
                    stream,
                    event.position,
                    format!("negative transaction id {transaction}"),
                )
            })?,
            position: event.position,
        };
        Ok((checkpoint, event))
    }
}

/// Reads a record row; a missing or out-of-range value is a `Corrupt` error naming the row.
pub(crate) fn record_from_row<D: Dialect>(row: &D::Row) -> Result<RecordedEvent, StoreError> {
    let position = D::int(row, 0).map_err(|e| corrupt("", 0, e))?;
    let stream = D::text(row, 2).map_err(|e| corrupt("", position, e))?;
    let get = |e: sqlx::Error| corrupt(stream, position, e);
    let version = D::int(row, 6).map_err(get)?;
    Ok(RecordedEvent {
        event_id: D::uuid(row, 4).map_err(get)?,
        stream_id: stream.to_owned(),
        stream_version: stored(
            stream,
            position,
            "stream version",
            D::int(row, 3).map_err(get)?,
        )?,
        position: stored(stream, position, "position", position)?,
        transaction_id: stored(
            stream,
            position,
            "transaction id",
            D::int(row, 1).map_err(get)?,
        )?,
        recorded_at: D::time(row, 9)
            .map_err(|reason| corrupt(stream, position, format!("recorded time: {reason}")))?,
        name: D::text(row, 5).map_err(get)?.to_owned(),
        version: u32::try_from(version).map_err(|_| {
            corrupt(
                stream,
                position,
                format!("event version {version} out of range"),
            )
        })?,
        payload: RawValue::from_string(D::text(row, 7).map_err(get)?.to_owned())
            .map_err(|e| corrupt(stream, position, format!("payload is not JSON: {e}")))?,
        metadata: serde_json::from_str(D::text(row, 8).map_err(get)?)
            .map_err(|e| corrupt(stream, position, format!("invalid metadata: {e}")))?,
    })
}

/// Reads a snapshot whose columns start at `at`; an unreadable value is a
/// `CorruptSnapshot` error.
pub(crate) fn snapshot_from_row<D: Dialect>(
    stream: &str,
    row: &D::Row,
    at: usize,
) -> Result<SnapshotRecord, StoreError> {
    let corrupt = |reason: String| StoreError::CorruptSnapshot {
        stream: stream.to_owned(),
        reason,
    };
    let get = |e: sqlx::Error| corrupt(e.to_string());
    let version = D::int(row, at).map_err(get)?;
    Ok(SnapshotRecord {
        stream_id: stream.to_owned(),
        version: u64::try_from(version)
            .map_err(|_| corrupt(format!("negative version {version}")))?,
        fingerprint: from_fingerprint(D::int(row, at + 1).map_err(get)?),
        state: D::text(row, at + 2).map_err(get)?.to_owned(),
        taken_at: D::time(row, at + 3)
            .map_err(|reason| corrupt(format!("time taken: {reason}")))?,
    })
}

/// What the rows of a load from a snapshot hold.
pub(crate) enum SnapshotRows {
    /// The snapshot, if any, and the events after it.
    Read(SnapshotRead),
    /// The snapshot's row cannot be read; the events read are only those after it.
    Unreadable(StoreError),
}

/// Splits the rows of a load from a snapshot into the snapshot and the events.
pub(crate) fn split_snapshot_rows<D: Dialect>(
    stream: &str,
    rows: &[D::Row],
) -> Result<SnapshotRows, StoreError> {
    let mut read = SnapshotRead::default();
    read.events.reserve(rows.len());
    for row in rows {
        let version = D::opt_int(row, SNAPSHOT_AT).map_err(|e| StoreError::CorruptSnapshot {
            stream: stream.to_owned(),
            reason: e.to_string(),
        });
        match version {
            Ok(None) => read.events.push(record_from_row::<D>(row)?),
            Ok(Some(_)) => match snapshot_from_row::<D>(stream, row, SNAPSHOT_AT) {
                Ok(snapshot) => read.snapshot = Some(snapshot),
                Err(error) => return Ok(SnapshotRows::Unreadable(error)),
            },
            Err(error) => return Ok(SnapshotRows::Unreadable(error)),
        }
    }
    Ok(SnapshotRows::Read(read))
}

/// A load whose snapshot row cannot be read goes on without it: snapshots are a cache, so
/// the stream's events up to `to` are read instead, and the reason is logged.
pub(crate) async fn without_snapshot<S: StoreSession>(
    session: &mut S,
    stream: &str,
    to: u64,
    error: StoreError,
) -> Result<SnapshotRead, StoreError> {
    tracing::warn!(stream, %error, "unreadable snapshot; reading the stream from its start");
    Ok(SnapshotRead {
        snapshot: None,
        events: session
            .read_stream(stream, VersionRange::new(..=to))
            .await?,
    })
}

/// Hands each row of a streamed query to `f` as it arrives, so decoding overlaps the
/// transfer and a page is never held whole; stops at the first error. Returns how many
/// rows `f` took.
pub(crate) async fn for_each_row<R, E>(
    mut rows: BoxStream<'_, Result<R, sqlx::Error>>,
    mut f: impl FnMut(&R) -> Result<(), E>,
) -> Result<usize, E>
where
    E: From<StoreError>,
{
    let mut seen = 0;
    while let Some(row) = poll_fn(|cx| rows.as_mut().poll_next(cx)).await {
        f(&row.map_err(StoreError::backend)?)?;
        seen += 1;
    }
    Ok(seen)
}
