//! Row handling shared by the SQL backends: reading columns, streaming rows, and the checks
//! that turn a stored row into a record.

use uuid::Uuid;

use crate::event::{Checkpoint, RecordedEvent, StoredEvent};

use super::error::StoreError;

/// Reads column `index` of a backend's own row: with sqlx's type check where values carry
/// their own types (SQLite), without it where the schema fixes each column's type
/// (PostgreSQL; the check costs more than the decode). Either way a value that does not
/// decode is an error, never a wrong value.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn column<'r, R, T, const TRUSTED: bool>(row: &'r R, index: usize) -> Result<T, sqlx::Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    if TRUSTED {
        row.try_get_unchecked(index)
    } else {
        row.try_get(index)
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl<'r> StoredEvent<'r> {
    /// Reads the columns (stream_version, position, event_name, event_version, payload) of
    /// a row of `stream`; a missing or out-of-range one is a `Corrupt` error naming it.
    /// `TRUSTED`: see [`column`].
    pub(crate) fn from_row<R, const TRUSTED: bool>(
        stream: &'r str,
        row: &'r R,
    ) -> Result<Self, StoreError>
    where
        R: sqlx::Row,
        usize: sqlx::ColumnIndex<R>,
        i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        let position: i64 = column::<R, _, TRUSTED>(row, 1)
            .map_err(|e| RawRecord::unreadable(stream.to_owned(), 0, e))?;
        let corrupt = |reason: String| RawRecord::unreadable(stream.to_owned(), position, reason);
        let get = |e: sqlx::Error| corrupt(e.to_string());
        let unsigned = |what: &str, v: i64| {
            u64::try_from(v).map_err(|_| corrupt(format!("negative {what} {v}")))
        };
        let version: i32 = column::<R, _, TRUSTED>(row, 3).map_err(get)?;
        let stream_version: i64 = column::<R, _, TRUSTED>(row, 0).map_err(get)?;
        Ok(Self {
            stream_id: stream,
            stream_version: unsigned("stream version", stream_version)?,
            position: unsigned("position", position)?,
            name: column::<R, _, TRUSTED>(row, 2).map_err(get)?,
            version: u32::try_from(version)
                .map_err(|_| corrupt(format!("event version {version} out of range")))?,
            payload: column::<R, _, TRUSTED>(row, 4).map_err(get)?,
        })
    }

    /// Reads a row of the global order: the columns of [`StoredEvent::from_row`], then
    /// stream_id; `transaction` is the transaction id, as the backend reads it.
    pub(crate) fn from_global_row<R, const TRUSTED: bool>(
        row: &'r R,
        transaction: Result<i64, sqlx::Error>,
    ) -> Result<(Checkpoint, Self), StoreError>
    where
        R: sqlx::Row,
        usize: sqlx::ColumnIndex<R>,
        i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        let stream: &'r str = column::<R, _, TRUSTED>(row, 5).map_err(|e| {
            let position = column::<R, i64, TRUSTED>(row, 1).unwrap_or(0);
            RawRecord::unreadable(String::new(), position, e)
        })?;
        let event = Self::from_row::<R, TRUSTED>(stream, row)?;
        let corrupt = |reason: String| StoreError::Corrupt {
            stream: stream.to_owned(),
            position: event.position,
            reason,
        };
        let transaction = transaction.map_err(|e| corrupt(e.to_string()))?;
        let transaction_id = u64::try_from(transaction)
            .map_err(|_| corrupt(format!("negative transaction id {transaction}")))?;
        let checkpoint = Checkpoint {
            transaction_id,
            position: event.position,
        };
        Ok((checkpoint, event))
    }
}

/// Hands each row of a streamed query to `f` as it arrives, so decoding overlaps the
/// transfer and a page is never held whole; stops at the first error. Returns how many
/// rows `f` took.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) async fn for_each_row<R, E>(
    mut rows: futures_core::stream::BoxStream<'_, Result<R, sqlx::Error>>,
    mut f: impl FnMut(&R) -> Result<(), E>,
) -> Result<usize, E>
where
    E: From<StoreError>,
{
    let mut seen = 0;
    while let Some(row) = std::future::poll_fn(|cx| rows.as_mut().poll_next(cx)).await {
        f(&row.map_err(StoreError::backend)?)?;
        seen += 1;
    }
    Ok(seen)
}

/// A stored row as a SQL backend reads it, before any check. Each backend only maps its
/// columns; the conversions and the corruption reports are the same everywhere.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) struct RawRecord {
    pub position: i64,
    /// `None` where positions are commit order: the position is used.
    pub transaction_id: Option<i64>,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_id: Uuid,
    pub name: String,
    pub version: i64,
    pub payload: String,
    pub metadata: String,
    /// `None` when the stored time is out of range.
    pub recorded_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl RawRecord {
    /// The error for a row whose columns cannot even be read.
    pub fn unreadable(stream: String, position: i64, error: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            stream,
            position: u64::try_from(position).unwrap_or(0),
            reason: error.to_string(),
        }
    }

    /// Checks and converts every field; a bad one is a `Corrupt` error naming the row.
    pub fn into_recorded(self) -> Result<RecordedEvent, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            stream: self.stream_id.clone(),
            position: u64::try_from(self.position).unwrap_or(0),
            reason,
        };
        let unsigned = |name: &str, v: i64| {
            u64::try_from(v).map_err(|_| corrupt(format!("negative {name} {v}")))
        };
        let position = unsigned("position", self.position)?;
        Ok(RecordedEvent {
            position,
            transaction_id: match self.transaction_id {
                Some(id) => unsigned("transaction id", id)?,
                None => position,
            },
            stream_version: unsigned("stream version", self.stream_version)?,
            event_id: self.event_id,
            version: u32::try_from(self.version)
                .map_err(|_| corrupt(format!("event version {} out of range", self.version)))?,
            payload: serde_json::value::RawValue::from_string(self.payload)
                .map_err(|e| corrupt(format!("payload is not JSON: {e}")))?,
            metadata: serde_json::from_str(&self.metadata)
                .map_err(|e| corrupt(format!("invalid metadata: {e}")))?,
            recorded_at: self
                .recorded_at
                .ok_or_else(|| corrupt("recorded time out of range".to_owned()))?,
            name: self.name,
            stream_id: self.stream_id,
        })
    }
}
