//! Appends with inline projections: the events, then every inline projection's documents,
//! in one transaction; a refusal rolls it all back.

use sqlx::postgres::PgConnection;
use sqlx::{Acquire, Postgres, Transaction};

use super::PostgresStore;
use super::append::{Columns, RecordedRow};
use super::columns::event_versions;
use super::read::stream_version;
use crate::event::Checkpoint;
use crate::event::NewEvent;
use crate::projection::{Changes, InlineTx, Slot, inline};
use crate::store::sql::{Dialect, UniqueKey, settle_conflict, stored};
use crate::store::{AppendResult, ExpectedVersion, StoreError};

/// Lost races on the version key an `Any` append runs again before giving up.
const RACES: usize = 100;

impl PostgresStore {
    /// Appends alone, in a transaction that also writes the inline projections' documents.
    /// Group commit is not used: a refusal must roll back this append only.
    pub(super) async fn append_inline(
        &self,
        conn: &mut PgConnection,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let versions = event_versions(stream, &events)?;
        let columns = Columns::new(&events, versions)?;
        let wrong = |actual| StoreError::WrongExpectedVersion {
            stream: stream.to_owned(),
            expected,
            actual,
        };
        let param = match expected {
            ExpectedVersion::Any => -1,
            ExpectedVersion::NoStream => 0,
            ExpectedVersion::Exact(v) => match i64::try_from(v) {
                Ok(v) => v,
                Err(_) => return Err(wrong(stream_version(conn, &self.sql, stream).await?)),
            },
        };
        let mut races = 0;
        let conflict = loop {
            let mut tx = conn.begin().await.map_err(StoreError::backend)?;
            let query = sqlx::query_as::<_, RecordedRow>(&self.sql.append_recorded)
                .bind(stream)
                .bind(param);
            match columns.bind(query).fetch_one(&mut *tx).await {
                Ok((
                    _,
                    Some(first),
                    Some(last),
                    Some(version),
                    Some(transaction),
                    Some(positions),
                    Some(recorded_at),
                )) => {
                    let done = AppendResult {
                        stream_version: stored(stream, last, "stream version", version)?,
                        first_position: stored(stream, first, "position", first)?,
                        last_position: stored(stream, last, "position", last)?,
                        transaction_id: stored(stream, last, "transaction id", transaction)?,
                        already_stored: false,
                    };
                    // What was just written, as any reader will see it: the positions and
                    // the time from the statement, the rest as sent.
                    let positions = positions
                        .into_iter()
                        .map(|position| {
                            Ok(Checkpoint {
                                transaction_id: done.transaction_id,
                                position: stored(stream, position, "position", position)?,
                            })
                        })
                        .collect::<Result<Vec<_>, StoreError>>()?;
                    if positions.len() != events.len() {
                        return Err(StoreError::backend(std::io::Error::other(format!(
                            "an append to `{stream}` stored {} events but reported {} positions",
                            events.len(),
                            positions.len()
                        ))));
                    }
                    let count = events.len() as u64;
                    let first_version = done.stream_version + 1 - count;
                    let records =
                        inline::records(stream, first_version, &positions, &events, recorded_at);
                    let mut on = InTransaction(&mut tx, self);
                    if inline::apply(&mut on, &self.inline, stream, &records).await? {
                        tx.commit().await.map_err(StoreError::backend)?;
                        return Ok(done);
                    }
                    // Another append created a document this one creates: from the top,
                    // now that it exists.
                    tx.rollback().await.map_err(StoreError::backend)?;
                    races += 1;
                    if races > RACES {
                        return Err(StoreError::backend(std::io::Error::other(format!(
                            "inline projections of stream `{stream}`: documents created \
                             concurrently {RACES} times in a row"
                        ))));
                    }
                }
                Ok((actual, ..)) => {
                    tx.rollback().await.map_err(StoreError::backend)?;
                    break wrong(stored(stream, 0, "stream version", actual)?);
                }
                Err(error) => {
                    tx.rollback().await.map_err(StoreError::backend)?;
                    match Postgres::violated(&error) {
                        Some(UniqueKey::StreamVersion)
                            if expected == ExpectedVersion::Any && races < RACES =>
                        {
                            races += 1;
                        }
                        Some(UniqueKey::StreamVersion) => {
                            break wrong(stream_version(conn, &self.sql, stream).await?);
                        }
                        Some(UniqueKey::EventId) => break StoreError::backend(error),
                        None => return Err(StoreError::backend(error)),
                    }
                }
            }
        };
        // A retried append finds its events stored: the original result, nothing new.
        let rows: Vec<(uuid::Uuid, String, i64, i64, i64)> = sqlx::query_as(&self.sql.stored_ids)
            .bind(&columns.ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::backend)?;
        settle_conflict(stream, &events, &rows, conflict)
    }
}

/// An append's transaction, for its inline projections.
struct InTransaction<'t, 'c, 's>(&'t mut Transaction<'c, Postgres>, &'s PostgresStore);

impl InlineTx for InTransaction<'_, '_, '_> {
    async fn load(
        &mut self,
        slot: &Slot,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.1.projections.lock_on(self.0, slot, keys).await
    }

    async fn write(
        &mut self,
        slot: &Slot,
        changes: Changes,
        loaded: &[String],
    ) -> Result<bool, StoreError> {
        self.1
            .projections
            .write_on(self.0, slot, changes, loaded)
            .await
    }
}
