//! Group commit on PostgreSQL: appends waiting together leave in one statement and one
//! commit, written by a leader on a connection of its own (see `store::group`).

use std::sync::{Arc, Mutex};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use uuid::Uuid;

use super::PostgresStore;
use super::cluster::Guard;
use super::columns::encode_metadata;
use super::statements::Statements;
use crate::event::NewEvent;
use crate::store::group::{Batch, Outcome, Request, Writer};
use crate::store::sql::stored;
use crate::store::{AppendResult, StoreError};

/// The most events one group commit carries; a bigger append is written on its own.
pub(super) const GROUP_MAX_EVENTS: usize = 1000;

/// The group-commit writers' connections, one per writer slot, apart from the pool: a
/// leader never waits for a connection that commands queued behind it hold, nor for a
/// pooled connection's return, which sqlx hands to a task of its own.
#[derive(Debug)]
pub(super) struct Writers {
    options: PgConnectOptions,
    idle: Mutex<Vec<PgConnection>>,
    guard: Arc<Guard>,
}

impl Writers {
    /// No connection yet: each is opened with `options` on first use, and checked by
    /// `guard`.
    pub(super) fn new(options: PgConnectOptions, writers: usize, guard: Arc<Guard>) -> Self {
        Self {
            options,
            idle: Mutex::new(Vec::with_capacity(writers)),
            guard,
        }
    }

    /// An idle writer connection, or a new one. The caller holds a writer slot, so at
    /// most one connection per slot exists. A new one that finds the cluster behind the
    /// stored events is refused: the group's appends then go alone, and meet the refusal.
    async fn take(&self) -> Result<PgConnection, sqlx::Error> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        if let Some(conn) = idle {
            return Ok(conn);
        }
        let mut conn = <PgConnection as sqlx::Connection>::connect_with(&self.options).await?;
        self.guard.on_connect(&mut conn).await?;
        match self.guard.refusal() {
            Some(refused) => Err(sqlx::Error::Configuration(refused.into())),
            None => Ok(conn),
        }
    }

    /// Keeps `conn` for the next group.
    fn give_back(&self, conn: PgConnection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }
}

/// One append waiting for a group commit: its events, encoded for the statement. The
/// caller keeps its own events, to append alone if the group cannot settle this.
pub(super) struct GroupRequest {
    stream: String,
    expected: i64,
    ids: Vec<Uuid>,
    names: Vec<String>,
    versions: Vec<i32>,
    payloads: Vec<String>,
    metadata: Vec<String>,
}

impl GroupRequest {
    /// `versions` are the events' versions as stored (see `columns::event_versions`).
    pub(super) fn new(
        stream: &str,
        expected: i64,
        events: &[NewEvent],
        versions: Vec<i32>,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            stream: stream.to_owned(),
            expected,
            ids: events.iter().map(|e| e.event_id).collect(),
            names: events.iter().map(|e| e.name.clone()).collect(),
            versions,
            payloads: events.iter().map(|e| e.payload.get().to_owned()).collect(),
            metadata: encode_metadata(events)?,
        })
    }
}

impl Request for GroupRequest {
    fn stream(&self) -> &str {
        &self.stream
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

impl Writer<GroupRequest> for PostgresStore {
    /// On a writer connection of its own; a connection that failed is closed, not reused.
    async fn write(&self, batch: &Batch<GroupRequest>) -> Vec<Outcome> {
        match self.writers.take().await {
            Ok(mut conn) => {
                let (outcomes, healthy) = append_group(&mut conn, &self.sql, batch).await;
                if healthy {
                    self.writers.give_back(conn);
                }
                outcomes
            }
            Err(error) => {
                tracing::debug!(%error, "no connection for a group commit");
                Vec::new()
            }
        }
    }
}

/// Writes a group commit's requests in one statement. A request gets `Done` when all its
/// events went in, `Alone` otherwise (its stream was not at the expected version, or the
/// statement failed); the caller then appends it alone, where conflicts and retried
/// appends are told apart. Also says whether the connection is still fit for use.
async fn append_group(
    conn: &mut PgConnection,
    sql: &Statements,
    batch: &Batch<GroupRequest>,
) -> (Vec<Outcome>, bool) {
    let total: usize = batch.requests().map(Request::len).sum();
    let rows = match batch.requests().next() {
        Some(one) if total == 1 => append_one(conn, sql, one).await,
        _ => append_many(conn, sql, batch, total).await,
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            tracing::debug!(%error, requests = batch.requests().len(), "group commit failed; each appends alone");
            return (Vec::new(), matches!(error, sqlx::Error::Database(_)));
        }
    };
    let outcomes = batch
        .requests()
        .map(|request| {
            let mut mine = rows.iter().filter(|row| row.0 == request.stream);
            let Some(&(_, version, position, transaction)) = mine.next() else {
                return Outcome::Alone;
            };
            let (mut count, mut last_version) = (1, version);
            let (mut first, mut last) = (position, position);
            for &(_, version, position, _) in mine {
                count += 1;
                last_version = last_version.max(version);
                first = first.min(position);
                last = last.max(position);
            }
            if count != request.len() {
                return Outcome::Alone;
            }
            // A value no counter can have leaves the request to append alone, which
            // finds its events stored and reports the corrupt record.
            let result = || -> Result<AppendResult, StoreError> {
                let stream = &request.stream;
                Ok(AppendResult {
                    stream_version: stored(stream, last, "stream version", last_version)?,
                    first_position: stored(stream, first, "position", first)?,
                    last_position: stored(stream, last, "position", last)?,
                    // One statement, one transaction: every row has its id.
                    transaction_id: stored(stream, last, "transaction id", transaction)?,
                    already_stored: false,
                })
            };
            result().map_or(Outcome::Alone, Outcome::Done)
        })
        .collect();
    (outcomes, true)
}

/// A group of one append of one event, the usual case for a single client: the group
/// statement with scalars instead of arrays, which PostgreSQL runs faster.
async fn append_one(
    conn: &mut PgConnection,
    sql: &Statements,
    request: &GroupRequest,
) -> Result<Vec<(String, i64, i64, i64)>, sqlx::Error> {
    let ([id], [name], [version], [payload], [metadata]) = (
        &request.ids[..],
        &request.names[..],
        &request.versions[..],
        &request.payloads[..],
        &request.metadata[..],
    ) else {
        // Not one event after all: no rows, so the request appends alone.
        return Ok(Vec::new());
    };
    sqlx::query_as(&sql.append_one)
        .bind(&request.stream)
        .bind(request.expected)
        .bind(id)
        .bind(name)
        .bind(version)
        .bind(payload)
        .bind(metadata)
        .fetch_all(conn)
        .await
}

/// The group statement: every request's events as parallel arrays.
async fn append_many(
    conn: &mut PgConnection,
    sql: &Statements,
    batch: &Batch<GroupRequest>,
    total: usize,
) -> Result<Vec<(String, i64, i64, i64)>, sqlx::Error> {
    let mut streams = Vec::with_capacity(total);
    let mut expected = Vec::with_capacity(total);
    let mut n = Vec::with_capacity(total);
    let mut ids = Vec::with_capacity(total);
    let mut names = Vec::with_capacity(total);
    let mut versions = Vec::with_capacity(total);
    let mut payloads = Vec::with_capacity(total);
    let mut metadata = Vec::with_capacity(total);
    for request in batch.requests() {
        for ordinal in (1_i64..).take(request.len()) {
            streams.push(request.stream.as_str());
            expected.push(request.expected);
            n.push(ordinal);
        }
        ids.extend_from_slice(&request.ids);
        names.extend(request.names.iter().map(String::as_str));
        versions.extend_from_slice(&request.versions);
        payloads.extend(request.payloads.iter().map(String::as_str));
        metadata.extend(request.metadata.iter().map(String::as_str));
    }
    tracing::trace!(
        requests = batch.requests().len(),
        events = total,
        "group commit"
    );
    sqlx::query_as(&sql.append_group)
        .bind(&streams)
        .bind(&expected)
        .bind(&n)
        .bind(&ids)
        .bind(&names)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metadata)
        .fetch_all(conn)
        .await
}
