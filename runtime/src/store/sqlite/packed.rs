//! Lean reads of many events per row. The SQLite driver hands rows one at a time from its
//! worker thread, copying every column into a value of its own: for the lean reads, which
//! are all rows and little work each, that was most of the time. Here SQLite packs a page
//! of events into one value, and the store reads the events out of it in place.
//!
//! A packed event is its numbers in decimal, `stream_version,position,event_version,
//! name_len,payload_len,stream_len;`, then its name, payload and stream id, each exactly
//! that many bytes. A payload larger than [`INLINE`] is left out (its length is packed as
//! `-`) and read alone, so a page never holds more than [`PAGE`] times that. A row the
//! packing cannot describe (a column of another type, written around the store) is read
//! again alone, the row-at-a-time way, for its exact error.

use sqlx::{Row, Sqlite, SqliteConnection};

use crate::event::{Checkpoint, StoredEvent};
use crate::store::StoreError;
use crate::store::sql::bound;

/// Most events per packed page: large enough that the per-row cost vanishes.
pub(super) const PAGE: i64 = 4096;

/// The largest payload packed in a page; a larger one costs a query of its own, small next
/// to reading and decoding it.
const INLINE: i64 = 16 << 10;

/// Payload bytes a page aims at: after a page of large events, the next asks for fewer.
const BUDGET: usize = 4 << 20;

/// The packed page of `$rows` (the rows after a cursor, in `$order`, with their payload's
/// `size` in bytes). `printf` writes the numbers (one call costs less than a chain of
/// `||`), but only stored integers: it would turn `2.5` into `2`, so a row with another
/// type packs as `?`, which `unpack` refuses. Text goes through `||`, which keeps every
/// byte where `printf` stops at a NUL.
macro_rules! packed_page {
    ($order:literal, $rows:literal) => {
        concat!(
            "SELECT CAST(group_concat(CASE WHEN typeof(stream_version) = 'integer' \
             AND typeof(event_version) = 'integer' THEN printf('%d,%d,%d,%d,%s,%d;', \
             stream_version, position, event_version, octet_length(event_name), \
             CASE WHEN size <= ?3 THEN size ELSE '-' END, octet_length(stream_id)) \
             || event_name || CASE WHEN size <= ?3 THEN payload ELSE '' END || stream_id \
             ELSE '?' END, '' ORDER BY ",
            $order,
            ") AS BLOB) FROM (SELECT stream_version, position, event_version, event_name, \
             stream_id, payload, octet_length(payload) AS size FROM annals_events ",
            $rows,
            ")"
        )
    };
}

/// Up to `?2` events after position `?1`, packed in position order.
const FOLD_ALL: &str = packed_page!("position", "WHERE position > ?1 ORDER BY position LIMIT ?2");

/// Up to `?2` events of stream `?4` with versions above `?1` up to `?5`, packed in version
/// order.
const FOLD_STREAM: &str = packed_page!(
    "stream_version",
    "WHERE stream_id = ?4 AND stream_version > ?1 AND stream_version <= ?5 \
     ORDER BY stream_version LIMIT ?2"
);

/// The payload at position `?1`, too large to pack.
const PAYLOAD: &str = "SELECT payload FROM annals_events WHERE position = ?1";

/// The first lean row after position `?1`, read alone for its exact error.
const LEAN_ALL: &str = "SELECT stream_version, position, event_name, event_version, payload, \
     stream_id, position FROM annals_events WHERE position > ?1 ORDER BY position LIMIT 1";

/// The first lean row of stream `?1` after version `?2` up to `?3`, read alone.
const LEAN_STREAM: &str = "SELECT stream_version, position, event_name, event_version, payload \
     FROM annals_events WHERE stream_id = ?1 AND stream_version > ?2 AND stream_version <= ?3 \
     ORDER BY stream_version LIMIT 1";

/// What one packed page held.
pub(super) struct Page {
    /// Events handed out.
    count: i64,
    /// Their payloads' bytes.
    bytes: usize,
    /// The cursor after the last event handed out: its position or stream version, or
    /// where the page started.
    pub(super) cursor: i64,
}

impl Page {
    /// The size of a first page: small enough for large events, large enough for a short
    /// read to take one.
    pub(super) const FIRST: i64 = 512;

    /// Events handed out.
    pub(super) fn count(&self) -> i64 {
        self.count
    }

    /// Whether another page may hold more events: this one was full.
    pub(super) fn more(&self, asked: i64) -> bool {
        self.count == asked
    }

    /// How many events to ask for next: as many as [`BUDGET`] holds at this page's mean
    /// payload, within `64..=PAGE`.
    pub(super) fn next(&self) -> i64 {
        let count = usize::try_from(self.count).unwrap_or(1).max(1);
        let mean = (self.bytes / count).max(1);
        i64::try_from(BUDGET / mean).unwrap_or(PAGE).clamp(64, PAGE)
    }
}

/// Which order a page is in, for its cursor and for reading a row again alone.
pub(super) enum Order<'a> {
    Global,
    Stream { stream: &'a str, to: i64 },
}

/// Runs one packed page after `cursor` (at most `asked` events) on `conn` and hands each
/// event to `f`, with its checkpoint (the position: one writer at a time makes positions
/// commit order).
pub(super) async fn fold_page<F, E>(
    conn: &mut SqliteConnection,
    order: &Order<'_>,
    cursor: i64,
    asked: i64,
    f: &mut F,
) -> Result<Page, E>
where
    F: FnMut(Checkpoint, StoredEvent<'_>) -> Result<(), E>,
    E: From<StoreError>,
{
    let query = match order {
        Order::Global => sqlx::query(FOLD_ALL),
        Order::Stream { .. } => sqlx::query(FOLD_STREAM),
    }
    .bind(cursor)
    .bind(asked)
    .bind(INLINE);
    let query = match order {
        Order::Global => query,
        Order::Stream { stream, to } => query.bind(*stream).bind(*to),
    };
    let row = query
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::backend)?;
    let packed: Option<&[u8]> = row.try_get(0).map_err(StoreError::backend)?;
    let mut page = Page {
        count: 0,
        bytes: 0,
        cursor,
    };
    let mut rest = packed.unwrap_or_default();
    let mut large: String;
    while !rest.is_empty() {
        let (event, after) = match unpack(rest) {
            Ok(unpacked) => unpacked,
            Err(packed) => return Err(read_alone(conn, order, page.cursor, packed).await.into()),
        };
        rest = after;
        let payload = match event.payload {
            Some(payload) => payload,
            None => {
                let read = sqlx::query_scalar(PAYLOAD)
                    .bind(bound(event.position))
                    .fetch_one(&mut *conn)
                    .await;
                large = match read {
                    Ok(payload) => payload,
                    Err(packed) => {
                        let packed = StoreError::backend(packed);
                        return Err(read_alone(conn, order, page.cursor, packed).await.into());
                    }
                };
                &large
            }
        };
        page.count += 1;
        page.bytes += payload.len();
        let checkpoint = Checkpoint {
            transaction_id: event.position,
            position: event.position,
        };
        let next = match order {
            Order::Global => event.position,
            Order::Stream { .. } => event.stream_version,
        };
        f(
            checkpoint,
            StoredEvent::lean(
                event.stream,
                event.stream_version,
                event.position,
                event.name,
                event.version,
                payload,
            ),
        )?;
        page.cursor = bound(next);
    }
    Ok(page)
}

/// The exact error of the row after `cursor`, read alone the row-at-a-time way; `packed`
/// when that reads it fine.
async fn read_alone(
    conn: &mut SqliteConnection,
    order: &Order<'_>,
    cursor: i64,
    packed: StoreError,
) -> StoreError {
    let row = match order {
        Order::Global => sqlx::query(LEAN_ALL).bind(cursor),
        Order::Stream { stream, to } => sqlx::query(LEAN_STREAM)
            .bind(*stream)
            .bind(cursor)
            .bind(*to),
    }
    .fetch_optional(conn)
    .await;
    let error = match (&row, order) {
        (Err(_), _) | (Ok(None), _) => None,
        (Ok(Some(row)), Order::Global) => StoredEvent::from_global_row::<Sqlite>(row).err(),
        (Ok(Some(row)), Order::Stream { stream, .. }) => {
            StoredEvent::from_row::<Sqlite>(stream, row).err()
        }
    };
    error.unwrap_or(packed)
}

/// One event read out of a page; its payload is `None` when it was too large to pack.
struct Unpacked<'a> {
    stream: &'a str,
    stream_version: u64,
    position: u64,
    name: &'a str,
    version: u32,
    payload: Option<&'a str>,
}

/// Reads the event at the start of `bytes`; returns it and what follows it.
fn unpack(bytes: &[u8]) -> Result<(Unpacked<'_>, &[u8]), StoreError> {
    let unplaced = |reason: String| StoreError::Corrupt {
        stream: String::new(),
        position: 0,
        stream_version: None,
        checkpoint: None,
        reason,
    };
    let end = bytes
        .iter()
        .position(|&b| b == b';')
        .ok_or_else(|| unplaced("a packed event without its numbers".to_owned()))?;
    // `-` for a payload left out: read as `None`.
    let mut numbers = [Some(0u64); 6];
    let mut fields = bytes[..end].split(|&b| b == b',');
    for number in &mut numbers {
        let field = fields.next().unwrap_or_default();
        *number = match field {
            b"-" => None,
            _ => Some(
                std::str::from_utf8(field)
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .ok_or_else(|| {
                        unplaced(format!(
                            "`{}` is not a counter",
                            String::from_utf8_lossy(field)
                        ))
                    })?,
            ),
        };
    }
    let counter = |number: Option<u64>| number.ok_or_else(|| unplaced("a counter left out".into()));
    let stream_version = counter(numbers[0])?;
    let position = counter(numbers[1])?;
    let version = counter(numbers[2])?;
    let mut from = end + 1;
    let mut take = |len: u64| -> Result<&[u8], StoreError> {
        let part = usize::try_from(len)
            .ok()
            .and_then(|len| bytes.get(from..from.checked_add(len)?))
            .ok_or_else(|| unplaced("a packed event cut short".to_owned()))?;
        from += part.len();
        Ok(part)
    };
    let name = take(counter(numbers[3])?)?;
    let payload = numbers[4].map(&mut take).transpose()?;
    let stream = take(counter(numbers[5])?)?;
    let after = &bytes[from..];
    let stream = std::str::from_utf8(stream)
        .map_err(|e| unplaced(format!("stream id is not UTF-8: {e}")))?;
    let located = |reason: String| StoreError::Corrupt {
        stream: stream.to_owned(),
        position,
        stream_version: Some(stream_version),
        checkpoint: Some(Checkpoint {
            transaction_id: position,
            position,
        }),
        reason,
    };
    let name =
        std::str::from_utf8(name).map_err(|e| located(format!("event name is not UTF-8: {e}")))?;
    let payload = payload
        .map(std::str::from_utf8)
        .transpose()
        .map_err(|e| located(format!("payload is not UTF-8: {e}")))?;
    let version = u32::try_from(version)
        .map_err(|_| located(format!("event version {version} out of range")))?;
    let event = Unpacked {
        stream,
        stream_version,
        position,
        name,
        version,
        payload,
    };
    Ok((event, after))
}
