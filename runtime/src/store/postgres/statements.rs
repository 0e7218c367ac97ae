//! The SQL text of one PostgreSQL store, its schema spliced in once.

/// The columns of a record (see `store::sql`). The cast transaction id gets its own name: left as
/// `transaction_id`, it would shadow the column in `ORDER BY transaction_id`, which would
/// then sort by the cast expression instead of walking the index (a full sort per page).
const COLUMNS: &str = "position, transaction_id::text::int8 AS transaction_number, stream_id, stream_version, event_id, \
     event_name, event_version, payload::text, metadata::text, recorded_at";

/// The SQL of one store, with its schema spliced in once (a validated identifier) so that
/// every query is a constant string: prepared once per connection, bound parameters only.
#[derive(Debug)]
pub(super) struct Statements {
    pub schema: String,
    pub append: String,
    pub append_recorded: String,
    pub append_group: String,
    pub append_one: String,
    pub read_stream: String,
    pub fold_stream: String,
    pub read_all: String,
    pub read_at: String,
    pub fold_all: String,
    pub stream_version: String,
    pub stored_ids: String,
    pub read_from_snapshot: String,
    pub read_snapshot: String,
    pub write_snapshot: String,
    pub channel: String,
}

impl Statements {
    pub(super) fn new(schema: &str) -> Self {
        let t = format!("\"{schema}\".annals_events");
        let s = format!("\"{schema}\".annals_snapshots");
        Self {
            schema: schema.to_owned(),
            // One statement, one round trip: read the stream's version, insert the batch only
            // if it matches, and report both. The unique (stream_id, stream_version) key
            // rejects the loser of two concurrent appends that read the same version.
            append: append(&t, "", ""),
            // The same, for an append with inline projections: also each event's position
            // and the recording time, so that its handlers see the records without
            // reading them back.
            append_recorded: append(
                &t,
                ", recorded_at",
                ", array_agg(ins.position ORDER BY ins.stream_version) \
                   FILTER (WHERE ins.position IS NOT NULL), MAX(ins.recorded_at)",
            ),
            // One statement for many streams' appends (group commit), each with an exact
            // expected version. A request's rows go in only when its stream is exactly at the
            // expected version: of the versions `expected` and `expected + 1`, it has the
            // first only (none for a new stream). An aggregate subquery stays a per-row key
            // probe in every plan, never a join over the table. The unique key still catches
            // a concurrent writer, failing the statement, which then writes nothing.
            append_group: format!(
                "INSERT INTO {t} (stream_id, stream_version, event_id, event_name, event_version, payload, metadata) \
                 SELECT e.stream_id, e.expected + e.n, e.id, e.name, e.version, e.payload::json, e.metadata::json \
                 FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::uuid[], $5::text[], $6::int4[], $7::text[], $8::text[]) \
                   WITH ORDINALITY AS e(stream_id, expected, n, id, name, version, payload, metadata, o) \
                 WHERE (SELECT count(*) FROM {t} c WHERE c.stream_id = e.stream_id \
                          AND c.stream_version BETWEEN e.expected AND e.expected + 1) \
                       = CASE WHEN e.expected = 0 THEN 0 ELSE 1 END \
                 ORDER BY e.o \
                 RETURNING stream_id, stream_version, position, transaction_id::text::int8"
            ),
            // `append_group` for a group of one event, on scalar parameters. Alone in its
            // statement, it may fail outright, so it leaves half the guard to the unique
            // key: it checks only that the expected version exists, and a stream that is
            // already past it fails on the key, writing nothing. Either way the request
            // then appends alone and learns why. A new stream is checked in full, though:
            // a creating command bets on it without reading, and an existing stream is
            // then a routine outcome, not worth an error in the server's log.
            append_one: format!(
                "INSERT INTO {t} (stream_id, stream_version, event_id, event_name, event_version, payload, metadata) \
                 SELECT $1, $2 + 1, $3, $4, $5, $6::json, $7::json \
                 WHERE CASE WHEN $2 = 0 THEN NOT EXISTS (SELECT 1 FROM {t} c WHERE c.stream_id = $1) \
                   ELSE EXISTS (SELECT 1 FROM {t} c WHERE c.stream_id = $1 AND c.stream_version = $2) END \
                 RETURNING stream_id, stream_version, position, transaction_id::text::int8"
            ),
            read_stream: format!(
                "SELECT {COLUMNS} FROM {t} WHERE stream_id = $1 AND stream_version BETWEEN $2 AND $3 \
                 ORDER BY stream_version"
            ),
            // A `json` value is sent in binary as its text, so the payload is read as it is
            // stored, with no conversion to `text` on the server for every row.
            fold_stream: format!(
                "SELECT stream_version, position, event_name, event_version, payload FROM {t} \
                 WHERE stream_id = $1 AND stream_version BETWEEN $2 AND $3 ORDER BY stream_version"
            ),
            // Only rows of finished transactions: anything still running has an id at or
            // above the snapshot's xmin, and will sort after what is returned here. As a
            // subquery, the bound is worked out once and ends the walk along the key.
            read_all: format!(
                "SELECT {COLUMNS} FROM {t} \
                 WHERE (transaction_id, position) > ($1::int8::text::xid8, $2::int8) \
                   AND transaction_id < (SELECT pg_snapshot_xmin(pg_current_snapshot())) \
                 ORDER BY transaction_id, position LIMIT $3"
            ),
            // One event by its place in the global order: the key, one probe.
            read_at: format!(
                "SELECT {COLUMNS} FROM {t} \
                 WHERE (transaction_id, position) = ($1::int8::text::xid8, $2::int8)"
            ),
            // `read_all`'s order and bound, with the columns of `fold_stream` first. The
            // transaction id comes as it is stored, not cast through text on every row.
            fold_all: format!(
                "SELECT stream_version, position, event_name, event_version, payload, stream_id, \
                   transaction_id FROM {t} \
                 WHERE (transaction_id, position) > ($1::int8::text::xid8, $2::int8) \
                   AND transaction_id < (SELECT pg_snapshot_xmin(pg_current_snapshot())) \
                 ORDER BY transaction_id, position LIMIT $3"
            ),
            stream_version: format!(
                "SELECT COALESCE(MAX(stream_version), 0) FROM {t} WHERE stream_id = $1"
            ),
            stored_ids: format!(
                "SELECT event_id, stream_id, stream_version, position, transaction_id::text::int8 FROM {t} WHERE event_id = ANY($1)"
            ),
            // One statement, one round trip: the snapshot when it has the fingerprint ($2), is
            // within the target ($3) and its event exists (not ahead of the stream), as a
            // first row with NULL event columns; then the events after it up to the target.
            read_from_snapshot: format!(
                "WITH s AS (SELECT version, fingerprint, state, taken_at FROM {s} \
                   WHERE stream_id = $1 AND fingerprint = $2 AND version <= $3 \
                     AND EXISTS (SELECT 1 FROM {t} e WHERE e.stream_id = $1 AND e.stream_version = {s}.version)) \
                 SELECT {COLUMNS}, NULL::int8, NULL::int8, NULL::text, NULL::timestamptz FROM {t} \
                 WHERE stream_id = $1 AND stream_version > COALESCE((SELECT version FROM s), 0) \
                   AND stream_version <= $3 \
                 UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
                   version, fingerprint, state, taken_at FROM s \
                 ORDER BY 4 NULLS FIRST"
            ),
            read_snapshot: format!(
                "SELECT version, fingerprint, state, taken_at FROM {s} WHERE stream_id = $1"
            ),
            write_snapshot: format!(
                "INSERT INTO {s} AS cur (stream_id, version, fingerprint, state, taken_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream_id) DO UPDATE SET \
                 version = excluded.version, fingerprint = excluded.fingerprint, \
                 state = excluded.state, taken_at = excluded.taken_at \
                 WHERE excluded.version >= cur.version OR excluded.fingerprint <> cur.fingerprint \
                    OR NOT EXISTS (SELECT 1 FROM {t} e WHERE e.stream_id = excluded.stream_id \
                                   AND e.stream_version = cur.version)"
            ),
            channel: channel(schema),
        }
    }
}

/// The notification channel of the store in `schema`.
pub(super) fn channel(schema: &str) -> String {
    format!("annals_events_{schema}")
}

/// The append statement on table `t`: read the stream's version, insert the batch only if
/// it matches, and report both, with `returning` more of each row and `select` more of
/// the batch.
fn append(t: &str, returning: &str, select: &str) -> String {
    format!(
        "WITH cur AS (SELECT COALESCE(MAX(stream_version), 0) AS v FROM {t} WHERE stream_id = $1), \
         ins AS (INSERT INTO {t} (stream_id, stream_version, event_id, event_name, event_version, payload, metadata) \
           SELECT $1, cur.v + e.n, e.id, e.name, e.version, e.payload::json, e.metadata::json \
           FROM cur, UNNEST($3::uuid[], $4::text[], $5::int4[], $6::text[], $7::text[]) \
             WITH ORDINALITY AS e(id, name, version, payload, metadata, n) \
           WHERE $2::int8 < 0 OR cur.v = $2::int8 \
           ORDER BY e.n \
           RETURNING position, stream_version, transaction_id{returning}) \
         SELECT cur.v, MIN(ins.position), MAX(ins.position), MAX(ins.stream_version), \
           MAX(ins.transaction_id::text::int8){select} \
         FROM cur LEFT JOIN ins ON true GROUP BY cur.v"
    )
}
