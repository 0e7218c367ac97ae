//! How PostgreSQL's rows hold values. The schema fixes every column's type, so rows are
//! read without sqlx's per-column type check, which costs more than the decoding itself;
//! a value of another shape still fails to decode, it is never misread.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row};
use uuid::Uuid;

use crate::store::sql::{Dialect, UniqueKey};

impl Dialect for Postgres {
    fn int(row: &PgRow, index: usize) -> Result<i64, sqlx::Error> {
        // Also reads `int4` (event versions) and `xid8`: transaction ids are sent as
        // unsigned 64-bit integers, which sqlx has no type for, and stay far below 2^63.
        row.try_get_unchecked(index)
    }

    fn opt_int(row: &PgRow, index: usize) -> Result<Option<i64>, sqlx::Error> {
        row.try_get_unchecked(index)
    }

    fn text(row: &PgRow, index: usize) -> Result<&str, sqlx::Error> {
        // A `json` value is sent in binary as its text.
        row.try_get_unchecked(index)
    }

    fn uuid(row: &PgRow, index: usize) -> Result<Uuid, sqlx::Error> {
        row.try_get_unchecked(index)
    }

    fn time(row: &PgRow, index: usize) -> Result<DateTime<Utc>, String> {
        row.try_get_unchecked(index).map_err(|e| e.to_string())
    }

    fn violated(error: &sqlx::Error) -> Option<UniqueKey> {
        match error {
            sqlx::Error::Database(db) if db.is_unique_violation() => match db.constraint() {
                Some("annals_events_stream_version_key") => Some(UniqueKey::StreamVersion),
                Some("annals_events_event_id_key") => Some(UniqueKey::EventId),
                _ => None,
            },
            _ => None,
        }
    }
}
