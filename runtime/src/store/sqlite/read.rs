//! Reads of the global order from the SQLite store, on the pool of read connections
//! (a stream's reads are shared with PostgreSQL: `store::sql`).

use sqlx::{Sqlite, SqlitePool};

use super::packed::{self, Order, Page};
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

/// Up to `max` events after `after` in global order, each handed to `f`; packed pages on
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
    let (mut seen, mut cursor, mut size) = (0, bound(after.position), Page::FIRST);
    while seen < max {
        let asked = size.min(limit(max - seen));
        let page = packed::fold_page(&mut conn, &Order::Global, cursor, asked, &mut f).await?;
        seen += usize::try_from(page.count()).unwrap_or(usize::MAX);
        if !page.more(asked) {
            break;
        }
        (cursor, size) = (page.cursor, page.next());
    }
    Ok(seen)
}

/// The events of `stream` in `range`, in version order, each handed to `f`; packed pages
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
    let order = Order::Stream {
        stream,
        to: bound(range.to),
    };
    let (mut cursor, mut size) = (bound(range.from.saturating_sub(1)), Page::FIRST);
    let mut f = |_: Checkpoint, event: StoredEvent<'_>| f(event);
    loop {
        let page = packed::fold_page(&mut conn, &order, cursor, size, &mut f).await?;
        if !page.more(size) {
            return Ok(());
        }
        (cursor, size) = (page.cursor, page.next());
    }
}
