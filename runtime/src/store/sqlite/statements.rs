//! The SQL text of the SQLite store. Every query returns the columns the shared row
//! readers expect (see `store::sql`), in their order.

/// A record's columns. Positions are commit order here (one writer at a time), so the
/// position stands in for the transaction id.
macro_rules! select_records {
    ($($rest:literal)*) => {
        concat!(
            "SELECT position, position, stream_id, stream_version, event_id, event_name, \
             event_version, payload, metadata, recorded_at FROM annals_events ",
            $($rest),*
        )
    };
}

pub(super) const READ_STREAM: &str = select_records!(
    "WHERE stream_id = ? AND stream_version BETWEEN ? AND ? ORDER BY stream_version"
);

pub(super) const READ_ALL: &str = select_records!("WHERE position > ? ORDER BY position LIMIT ?");

pub(super) const READ_AT: &str = select_records!("WHERE position = ?");

pub(super) const STREAM_VERSION: &str =
    "SELECT COALESCE(MAX(stream_version), 0) FROM annals_events WHERE stream_id = ?";

/// Where event ids are already stored: the ids are bound after it, joined with `, `.
pub(super) const STORED_IDS: &str = "SELECT event_id, stream_id, stream_version, position, position FROM annals_events WHERE event_id IN (";

/// One query for a load from a snapshot: the stream's snapshot when it has the fingerprint
/// (`?2`), is within the target (`?3`) and its event exists (not ahead of the stream), as a
/// first row with NULL event columns; then the events after it up to the target.
pub(super) const READ_FROM_SNAPSHOT: &str = "WITH s AS (SELECT version, fingerprint, state, taken_at \
     FROM annals_snapshots WHERE stream_id = ?1 AND fingerprint = ?2 AND version <= ?3 \
       AND EXISTS (SELECT 1 FROM annals_events e \
                   WHERE e.stream_id = ?1 AND e.stream_version = annals_snapshots.version)) \
     SELECT position, position, stream_id, stream_version, event_id, event_name, event_version, \
       payload, metadata, recorded_at, NULL, NULL, NULL, NULL FROM annals_events \
     WHERE stream_id = ?1 AND stream_version > COALESCE((SELECT version FROM s), 0) \
       AND stream_version <= ?3 \
     UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
       version, fingerprint, state, taken_at FROM s \
     ORDER BY 4";

pub(super) const READ_SNAPSHOT: &str =
    "SELECT version, fingerprint, state, taken_at FROM annals_snapshots WHERE stream_id = ?";

/// Keeps a newer snapshot of the same fingerprint that is within the stream: a late write
/// of an older state must not replace it.
pub(super) const WRITE_SNAPSHOT: &str = "INSERT INTO annals_snapshots (stream_id, version, fingerprint, state, taken_at) \
     VALUES (?, ?, ?, ?, ?) ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, \
     fingerprint = excluded.fingerprint, state = excluded.state, taken_at = excluded.taken_at \
     WHERE excluded.version >= annals_snapshots.version \
        OR excluded.fingerprint <> annals_snapshots.fingerprint \
        OR NOT EXISTS (SELECT 1 FROM annals_events e WHERE e.stream_id = excluded.stream_id \
                       AND e.stream_version = annals_snapshots.version)";

/// Rows per INSERT statement: 8 parameters each stays far below SQLite's 32,766 limit.
pub(super) const INSERT_CHUNK: usize = 1000;

/// `INSERT ... VALUES (...), (...) RETURNING position` for `rows` events.
pub(super) fn insert(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO annals_events (stream_id, stream_version, event_id, event_name, event_version, \
         payload, metadata, recorded_at) VALUES ",
    );
    for i in 0..rows {
        sql.push_str(if i == 0 {
            "(?, ?, ?, ?, ?, ?, ?, ?)"
        } else {
            ", (?, ?, ?, ?, ?, ?, ?, ?)"
        });
    }
    sql.push_str(" RETURNING position");
    sql
}

/// [`STORED_IDS`] for `ids` ids.
pub(super) fn stored_ids(ids: usize) -> String {
    let mut sql = String::from(STORED_IDS);
    for i in 0..ids {
        sql.push_str(if i == 0 { "?" } else { ", ?" });
    }
    sql.push(')');
    sql
}
