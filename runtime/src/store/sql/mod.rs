//! What the SQL backends share where the dialect is not the difference: reading rows into
//! records, checked conversions of stored numbers, the migration runner and the slow path
//! of an append that conflicted.
//!
//! The backends' queries return the same columns in the same order (see [`row`]); a
//! backend's [`Dialect`] says only how its rows hold each kind of value.

mod conflict;
pub(crate) mod convert;
mod migrate;
mod read;
mod row;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub(crate) use conflict::settle_conflict;
pub(crate) use convert::{bound, limit, storable, stored, to_fingerprint};
pub(crate) use migrate::{
    Migration, MigrationConnection, MigrationTable, Refused, migrate, migration_connection,
};
#[cfg_attr(not(feature = "postgres"), allow(unused_imports))]
pub(crate) use read::{fold_global, fold_stream, read_stream, stream_version};
#[cfg_attr(not(feature = "sqlite"), allow(unused_imports))]
pub(crate) use row::{
    LeanRow, SnapshotRows, records_until_unreadable, snapshot_from_row, split_snapshot_rows,
    without_snapshot,
};

/// How one SQL backend's rows hold the values the shared code reads. Every read is an error
/// when the value is missing or of another type, never a wrong value.
pub(crate) trait Dialect: sqlx::Database {
    /// An integer column (`bigint`, `integer`, or `xid8` read as the `int8` it equals).
    fn int(row: &Self::Row, index: usize) -> Result<i64, sqlx::Error>;
    /// An integer column that may be NULL.
    fn opt_int(row: &Self::Row, index: usize) -> Result<Option<i64>, sqlx::Error>;
    /// A text column, borrowed from the row.
    fn text(row: &Self::Row, index: usize) -> Result<&str, sqlx::Error>;
    /// An event id column.
    fn uuid(row: &Self::Row, index: usize) -> Result<Uuid, sqlx::Error>;
    /// A time column; the error says why the value is not a time.
    fn time(row: &Self::Row, index: usize) -> Result<DateTime<Utc>, String>;
    /// Which of the log's unique keys `error` violated, if it is such a violation.
    fn violated(error: &sqlx::Error) -> Option<UniqueKey>;
}

/// The unique keys of the event table, which settle races the version check cannot see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UniqueKey {
    /// (stream_id, stream_version): a concurrent append took the version.
    StreamVersion,
    /// event_id: an id is already stored.
    EventId,
}
