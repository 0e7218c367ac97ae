//! How SQLite's rows hold values: types travel with the values, so every read is checked;
//! event ids are hyphenated text and times microseconds since 1970.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use crate::store::sql::{Dialect, UniqueKey};

impl Dialect for Sqlite {
    fn int(row: &SqliteRow, index: usize) -> Result<i64, sqlx::Error> {
        row.try_get(index)
    }

    fn opt_int(row: &SqliteRow, index: usize) -> Result<Option<i64>, sqlx::Error> {
        row.try_get(index)
    }

    fn text(row: &SqliteRow, index: usize) -> Result<&str, sqlx::Error> {
        row.try_get(index)
    }

    fn uuid(row: &SqliteRow, index: usize) -> Result<Uuid, sqlx::Error> {
        row.try_get::<Hyphenated, _>(index)
            .map(Hyphenated::into_uuid)
    }

    fn time(row: &SqliteRow, index: usize) -> Result<DateTime<Utc>, String> {
        let micros: i64 = row.try_get(index).map_err(|e| e.to_string())?;
        DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| format!("{micros} µs since 1970 is out of range"))
    }

    fn violated(error: &sqlx::Error) -> Option<UniqueKey> {
        match error {
            // A unique key, or the triggers that refuse a row a key would (migration 3).
            sqlx::Error::Database(db)
                if db.is_unique_violation()
                    || db.message().starts_with("annals_events is append-only") =>
            {
                if db.message().contains("stream_version") {
                    Some(UniqueKey::StreamVersion)
                } else if db.message().contains("event_id") {
                    Some(UniqueKey::EventId)
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

/// Microseconds since 1970, as the store keeps times.
pub(super) fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

/// Whether `error` says the database was locked by another writer past the busy timeout
/// (`SQLITE_BUSY`, `SQLITE_LOCKED` and their extended codes).
pub(super) fn busy(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, 5 | 6)),
        _ => false,
    }
}
