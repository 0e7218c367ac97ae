//! Reads from the SQLite store's pool of read connections: the global order's records, and
//! the lean folds of a stream or of the global order, stepped by the store itself (`raw`).
//! A stream's records are read as on PostgreSQL (`store::sql`).

use sqlx::{Sqlite, SqlitePool};

use std::ffi::CStr;

use super::raw::Statement;
use super::statements::READ_ALL;
use crate::event::{Checkpoint, RecordedEvent, StoredEvent};
use crate::store::sql::{bound, limit, records_until_unreadable};
use crate::store::{StoreError, VersionRange, validate_stream_id};

pub(super) async fn read_all(
    pool: &SqlitePool,
    after: Checkpoint,
    max: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = sqlx::query(READ_ALL)
        .bind(bound(after.position))
        .bind(limit(max))
        .fetch_all(pool)
        .await
        .map_err(StoreError::backend)?;
    records_until_unreadable::<Sqlite>(&rows)
}

/// Rows per page of a lean read: the runtime thread steps a page without a pause, so a page
/// is a millisecond or so; large enough that preparing the statement again costs nothing.
const PAGE: usize = 4096;

/// A lean row of the global order (see `store::sql`'s row module): up to `?2` rows after
/// position `?1`. Positions are commit order here, so the position is the transaction id.
const LEAN_ALL: &CStr = c"SELECT stream_version, position, event_name, event_version, payload, \
     stream_id, position FROM annals_events WHERE position > ?1 ORDER BY position LIMIT ?2";

/// A lean row of stream `?1`: up to `?4` rows with versions above `?2` up to `?3`.
const LEAN_STREAM: &CStr = c"SELECT stream_version, position, event_name, event_version, payload \
     FROM annals_events WHERE stream_id = ?1 AND stream_version > ?2 AND stream_version <= ?3 \
     ORDER BY stream_version LIMIT ?4";

/// Up to `max` events after `after` in global order, each handed to `f`: pages stepped on
/// one connection.
pub(super) async fn fold_all<F, E>(
    pool: &SqlitePool,
    after: Checkpoint,
    max: usize,
    mut f: F,
) -> Result<usize, E>
where
    F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E>,
    E: From<StoreError>,
{
    let mut conn = pool.acquire().await.map_err(StoreError::backend)?;
    let (mut seen, mut cursor) = (0, bound(after.position));
    while seen < max {
        let asked = PAGE.min(max - seen);
        let mut handle = conn.lock_handle().await.map_err(StoreError::backend)?;
        let (count, last) = {
            // SAFETY: the handle stays locked until the statement is dropped, at the end
            // of this block.
            let mut stmt = unsafe { Statement::prepare(handle.as_raw_handle(), LEAN_ALL)? };
            stmt.bind_int(1, cursor)?;
            stmt.bind_int(2, limit(asked))?;
            let (mut count, mut last) = (0, cursor);
            while let Some(row) = stmt.step()? {
                let (checkpoint, event) = StoredEvent::from_global_row(&row)?;
                last = bound(event.position);
                f(checkpoint, event)?;
                count += 1;
            }
            (count, last)
        };
        drop(handle);
        seen += count;
        if count < asked {
            break;
        }
        cursor = last;
        tokio::task::yield_now().await;
    }
    Ok(seen)
}

/// The events of `stream` in `range`, in version order, each handed to `f`: pages stepped
/// on one connection.
pub(super) async fn fold_stream<F, E>(
    pool: &SqlitePool,
    stream: &str,
    range: VersionRange,
    mut f: F,
) -> Result<(), E>
where
    F: FnMut(StoredEvent<'_>) -> Result<(), E>,
    E: From<StoreError>,
{
    validate_stream_id(stream)?;
    let mut conn = pool.acquire().await.map_err(StoreError::backend)?;
    let (to, mut cursor) = (bound(range.to), bound(range.from.saturating_sub(1)));
    loop {
        let mut handle = conn.lock_handle().await.map_err(StoreError::backend)?;
        let (count, last) = {
            // SAFETY: the handle stays locked until the statement is dropped, at the end
            // of this block.
            let mut stmt = unsafe { Statement::prepare(handle.as_raw_handle(), LEAN_STREAM)? };
            stmt.bind_text(1, stream)?;
            stmt.bind_int(2, cursor)?;
            stmt.bind_int(3, to)?;
            stmt.bind_int(4, limit(PAGE))?;
            let (mut count, mut last) = (0, cursor);
            while let Some(row) = stmt.step()? {
                let event = StoredEvent::from_row(stream, &row)?;
                last = bound(event.stream_version);
                f(event)?;
                count += 1;
            }
            (count, last)
        };
        drop(handle);
        if count < PAGE {
            return Ok(());
        }
        cursor = last;
        tokio::task::yield_now().await;
    }
}
