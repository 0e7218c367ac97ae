//! Appends to a PostgreSQL store: through group commit when the expected version is
//! exact, else alone in one statement, which tells a retried append from a conflict.

use sqlx::Postgres;
use sqlx::postgres::PgConnection;
use uuid::Uuid;

use super::PostgresStore;
use super::columns::{encode_metadata, event_versions};
use super::group::GroupRequest;
use super::read::stream_version;
use super::session::Lazy;
use super::statements::Statements;
use crate::event::NewEvent;
use crate::store::group::Outcome;
use crate::store::sql::{Dialect, UniqueKey, settle_conflict, stored};
use crate::store::{AppendResult, ExpectedVersion, StoreError, validate_append};

impl PostgresStore {
    /// Appends through group commit when the expected version is exact, else alone on
    /// `conn`, which is checked out only then.
    pub(super) async fn append_on(
        &self,
        conn: &mut Lazy<'_>,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        validate_append(stream, &events)?;
        if !self.inline.is_empty() {
            let result = self
                .append_inline(conn.get().await?, stream, expected, events)
                .await?;
            if !result.already_stored {
                self.announce();
            }
            return Ok(result);
        }
        // A version no stream can reach goes alone, to its conflict.
        let at = expected
            .exact()
            .filter(|_| self.group.accepts(events.len()))
            .and_then(|v| i64::try_from(v).ok());
        if let Some(expected) = at {
            let versions = event_versions(stream, &events)?;
            let request = GroupRequest::new(stream, expected, &events, versions)?;
            if let Outcome::Done(result) = self.group.settle(request, self).await {
                self.announce();
                return Ok(result);
            }
        }
        let versions = event_versions(stream, &events)?;
        let result = append(
            conn.get().await?,
            &self.sql,
            stream,
            expected,
            events,
            versions,
        )
        .await?;
        if !result.already_stored {
            self.announce();
        }
        Ok(result)
    }
}

/// Appends alone, in one statement; on a conflict, tells a retried append (its events are
/// already stored) from a real one.
async fn append(
    conn: &mut PgConnection,
    sql: &Statements,
    stream: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    versions: Vec<i32>,
) -> Result<AppendResult, StoreError> {
    let columns = Columns::new(&events, versions)?;
    let wrong = |actual| StoreError::WrongExpectedVersion {
        stream: stream.to_owned(),
        expected,
        actual,
    };
    // -1 stands for any version.
    let expected_param = match expected {
        ExpectedVersion::Any => Some(-1),
        ExpectedVersion::NoStream => Some(0),
        ExpectedVersion::Exact(v) => i64::try_from(v).ok(),
    };
    let conflict = match expected_param {
        Some(param) => match insert(conn, sql, stream, expected, param, &columns).await? {
            Ok(done) => return Ok(done),
            Err(conflict) => conflict,
        },
        // No stream reaches a version beyond the column's range.
        None => wrong(stream_version(conn, sql, stream).await?),
    };
    // Slow path only: a retried append carries a stale expected version or stored ids.
    let rows: Vec<(Uuid, String, i64, i64, i64)> = sqlx::query_as(&sql.stored_ids)
        .bind(&columns.ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::backend)?;
    settle_conflict(stream, &events, &rows, conflict)
}

/// An append's events as the statement's arrays.
pub(super) struct Columns<'a> {
    pub(super) ids: Vec<Uuid>,
    names: Vec<&'a str>,
    versions: Vec<i32>,
    payloads: Vec<&'a str>,
    metadata: Vec<String>,
}

impl<'a> Columns<'a> {
    pub(super) fn new(events: &'a [NewEvent], versions: Vec<i32>) -> Result<Self, StoreError> {
        Ok(Self {
            ids: events.iter().map(|e| e.event_id).collect(),
            names: events.iter().map(|e| e.name.as_str()).collect(),
            versions,
            payloads: events.iter().map(|e| e.payload.get()).collect(),
            metadata: encode_metadata(events)?,
        })
    }

    /// Binds the columns as the append statement's parameters 3 to 7.
    pub(super) fn bind<'q, O>(
        &'q self,
        query: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments> {
        query
            .bind(&self.ids)
            .bind(&self.names)
            .bind(&self.versions)
            .bind(&self.payloads)
            .bind(&self.metadata)
    }
}

/// The append statement's row: the stream's version before, the first and last
/// positions, the last version and the transaction id (the last four NULL when nothing
/// was inserted).
pub(super) type AppendRow = (i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>);

/// [`AppendRow`], then each event's position in stream order and the recording time
/// (NULL when nothing was inserted).
pub(super) type RecordedRow = (
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<Vec<i64>>,
    Option<chrono::DateTime<chrono::Utc>>,
);

/// Runs the append statement: the result, or the conflict to settle; other failures are
/// errors. `Any` cannot conflict by definition, so a lost race on the version key is run
/// again.
async fn insert(
    conn: &mut PgConnection,
    sql: &Statements,
    stream: &str,
    expected: ExpectedVersion,
    expected_param: i64,
    columns: &Columns<'_>,
) -> Result<Result<AppendResult, StoreError>, StoreError> {
    let wrong = |actual| StoreError::WrongExpectedVersion {
        stream: stream.to_owned(),
        expected,
        actual,
    };
    let mut races = 0;
    loop {
        let query = sqlx::query_as::<_, AppendRow>(&sql.append)
            .bind(stream)
            .bind(expected_param);
        let row = columns.bind(query).fetch_one(&mut *conn).await;
        return match row {
            Ok((_, Some(first), Some(last), Some(version), Some(transaction))) => {
                Ok(Ok(AppendResult {
                    stream_version: stored(stream, last, "stream version", version)?,
                    first_position: stored(stream, first, "position", first)?,
                    last_position: stored(stream, last, "position", last)?,
                    transaction_id: stored(stream, last, "transaction id", transaction)?,
                    already_stored: false,
                }))
            }
            Ok((actual, ..)) => Ok(Err(wrong(stored(stream, 0, "stream version", actual)?))),
            Err(e) => match Postgres::violated(&e) {
                Some(UniqueKey::StreamVersion)
                    if expected == ExpectedVersion::Any && races < 100 =>
                {
                    races += 1;
                    continue;
                }
                Some(UniqueKey::StreamVersion) => {
                    Ok(Err(wrong(stream_version(conn, sql, stream).await?)))
                }
                Some(UniqueKey::EventId) => Ok(Err(StoreError::backend(e))),
                None => Err(StoreError::backend(e)),
            },
        };
    }
}
