-- The event log. `position` is the global order: AUTOINCREMENT never reuses a value, and
-- SQLite has one writer at a time, so positions are also commit order.
CREATE TABLE annals_events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id      TEXT    NOT NULL,
    stream_version INTEGER NOT NULL CHECK (stream_version > 0),
    event_id       TEXT    NOT NULL UNIQUE,
    event_name     TEXT    NOT NULL,
    event_version  INTEGER NOT NULL,
    payload        TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    recorded_at    INTEGER NOT NULL, -- microseconds since the Unix epoch, UTC
    UNIQUE (stream_id, stream_version)
);

-- The log is append-only (guarantee 1): the database refuses edits, whoever asks.
CREATE TRIGGER annals_events_no_update BEFORE UPDATE ON annals_events
BEGIN SELECT RAISE(ABORT, 'annals_events is append-only'); END;
CREATE TRIGGER annals_events_no_delete BEFORE DELETE ON annals_events
BEGIN SELECT RAISE(ABORT, 'annals_events is append-only'); END;
