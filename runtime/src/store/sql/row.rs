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
use super::convert::from_fingerprint;
use crate::event::{Checkpoint, RecordedEvent, StoredEvent};
use crate::store::{SnapshotRead, SnapshotRecord, StoreError, StoreSession, VersionRange};

/// Where a load from a snapshot finds the snapshot's columns.
const SNAPSHOT_AT: usize = 10;

/// Where a row is, as far as its columns could be read: what its `Corrupt` error names.
#[derive(Clone, Copy, Default)]
struct Place<'a> {
    stream: &'a str,
    position: Option<i64>,
    stream_version: Option<i64>,
    transaction: Option<i64>,
}

impl Place<'_> {
    /// The error for this row: its location as far as known, and `reason`.
    fn corrupt(&self, reason: impl ToString) -> StoreError {
        let position = self.position.and_then(|p| u64::try_from(p).ok());
        let transaction = self.transaction.and_then(|t| u64::try_from(t).ok());
        StoreError::Corrupt {
            stream: self.stream.to_owned(),
            position: position.unwrap_or(0),
            stream_version: self.stream_version.and_then(|v| u64::try_from(v).ok()),
            checkpoint: transaction
                .zip(position)
                .map(|(transaction_id, position)| Checkpoint {
                    transaction_id,
                    position,
                }),
            reason: reason.to_string(),
        }
    }

    /// The error for a column `field` that does not read as its type.
    fn unreadable<E: std::fmt::Display>(
        &self,
        field: &'static str,
    ) -> impl Fn(E) -> StoreError + use<'_, E> {
        move |e| self.corrupt(format!("unreadable {field}: {e}"))
    }

    /// A stored counter: a negative one is corruption.
    fn counter(&self, field: &str, value: i64) -> Result<u64, StoreError> {
        u64::try_from(value).map_err(|_| self.corrupt(format!("negative {field} {value}")))
    }

    /// A stored event version, which every store keeps within `u32`.
    fn event_version(&self, value: i64) -> Result<u32, StoreError> {
        u32::try_from(value)
            .map_err(|_| self.corrupt(format!("event version {value} out of range")))
    }
}

/// The columns of a lean row, however a backend reads them: from the driver's rows (any
/// [`Dialect`]), or stepped by the store itself (SQLite's lean reads). Each read is an
/// error, saying why, when the value is missing or of another type.
pub(crate) trait LeanRow<'r> {
    /// An integer column.
    fn int(&self, index: usize) -> Result<i64, String>;
    /// A text column, borrowed from the row.
    fn text(&self, index: usize) -> Result<&'r str, String>;
}

/// A driver's row of dialect `D`, read as a lean row (PostgreSQL's; SQLite steps its own).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) struct DriverRow<'r, D: Dialect>(pub(crate) &'r D::Row);

impl<'r, D: Dialect> LeanRow<'r> for DriverRow<'r, D> {
    fn int(&self, index: usize) -> Result<i64, String> {
        D::int(self.0, index).map_err(|e| e.to_string())
    }

    fn text(&self, index: usize) -> Result<&'r str, String> {
        D::text(self.0, index).map_err(|e| e.to_string())
    }
}

impl<'r> StoredEvent<'r> {
    /// Reads a lean row of `stream`; a missing or out-of-range value is a `Corrupt` error
    /// naming the row.
    pub(crate) fn from_row(stream: &'r str, row: &impl LeanRow<'r>) -> Result<Self, StoreError> {
        let mut place = Place {
            stream,
            ..Place::default()
        };
        Self::lean_at(&mut place, row)
    }

    /// Reads a lean row of the global order, with its checkpoint.
    pub(crate) fn from_global_row(
        row: &impl LeanRow<'r>,
    ) -> Result<(Checkpoint, Self), StoreError> {
        let mut place = Place::default();
        // The checkpoint first: an error later in the row names it, so it can be skipped.
        let position = row.int(1).map_err(place.unreadable("position"))?;
        place.position = Some(position);
        let transaction = row.int(6).map_err(place.unreadable("transaction id"))?;
        place.transaction = Some(transaction);
        place.stream = row.text(5).map_err(place.unreadable("stream id"))?;
        let event = Self::lean_at(&mut place, row)?;
        let checkpoint = Checkpoint {
            transaction_id: place.counter("transaction id", transaction)?,
            position: event.position,
        };
        Ok((checkpoint, event))
    }

    /// The columns every lean row has, the position read already or not.
    fn lean_at(place: &mut Place<'r>, row: &impl LeanRow<'r>) -> Result<Self, StoreError> {
        let position = match place.position {
            Some(position) => position,
            None => {
                let position = row.int(1).map_err(place.unreadable("position"))?;
                place.position = Some(position);
                position
            }
        };
        let stream_version = row.int(0).map_err(place.unreadable("stream version"))?;
        place.stream_version = Some(stream_version);
        let place = *place;
        Ok(Self::lean(
            place.stream,
            place.counter("stream version", stream_version)?,
            place.counter("position", position)?,
            row.text(2).map_err(place.unreadable("event name"))?,
            place.event_version(row.int(3).map_err(place.unreadable("event version"))?)?,
            row.text(4).map_err(place.unreadable("payload"))?,
        ))
    }
}

/// Reads a record row; a missing or out-of-range value is a `Corrupt` error naming the row
/// as far as its columns can be read.
pub(crate) fn record_from_row<D: Dialect>(row: &D::Row) -> Result<RecordedEvent, StoreError> {
    let mut place = Place::default();
    place.position = Some(D::int(row, 0).map_err(place.unreadable("position"))?);
    place.transaction = Some(D::int(row, 1).map_err(place.unreadable("transaction id"))?);
    place.stream = D::text(row, 2).map_err(place.unreadable("stream id"))?;
    place.stream_version = Some(D::int(row, 3).map_err(place.unreadable("stream version"))?);
    let (position, transaction, stream_version) = (
        place.position.unwrap_or_default(),
        place.transaction.unwrap_or_default(),
        place.stream_version.unwrap_or_default(),
    );
    Ok(RecordedEvent {
        event_id: D::uuid(row, 4).map_err(place.unreadable("event id"))?,
        stream_id: place.stream.to_owned(),
        stream_version: place.counter("stream version", stream_version)?,
        position: place.counter("position", position)?,
        transaction_id: place.counter("transaction id", transaction)?,
        recorded_at: D::time(row, 9)
            .map_err(|reason| place.corrupt(format!("recorded time: {reason}")))?,
        name: D::text(row, 5)
            .map_err(place.unreadable("event name"))?
            .to_owned(),
        version: place.event_version(D::int(row, 6).map_err(place.unreadable("event version"))?)?,
        payload: RawValue::from_string(
            D::text(row, 7)
                .map_err(place.unreadable("payload"))?
                .to_owned(),
        )
        .map_err(|e| place.corrupt(format!("payload is not JSON: {e}")))?,
        metadata: serde_json::from_str(D::text(row, 8).map_err(place.unreadable("metadata"))?)
            .map_err(|e| place.corrupt(format!("invalid metadata: {e}")))?,
    })
}

/// The records of a page of the global order, up to the first row that cannot be read: the
/// events before it are never held back by it. A page that starts with such a row is its
/// error, which names the row and its checkpoint.
pub(crate) fn records_until_unreadable<D: Dialect>(
    rows: &[D::Row],
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        match record_from_row::<D>(row) {
            Ok(record) => records.push(record),
            Err(error) if records.is_empty() => return Err(error),
            Err(_) => break,
        }
    }
    Ok(records)
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
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
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
