-- The projections' progress: one row per read model, its generation and its checkpoint.
-- Readers see the generation marked `live`; a rebuild writes another beside it.
CREATE TABLE annals_projections (
    name           TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    generation     INTEGER NOT NULL,
    transaction_id INTEGER NOT NULL DEFAULT 0,
    position       INTEGER NOT NULL DEFAULT 0,
    live           INTEGER NOT NULL DEFAULT 1 CHECK (live IN (0, 1)),
    -- Applied inline by the stores that append (inside each append): runners leave it.
    inline         INTEGER NOT NULL DEFAULT 0 CHECK (inline IN (0, 1)),
    -- Why its runner's last batch failed, while it fails; NULL otherwise.
    failure        TEXT,
    -- Halted on that failure (`on_error = "stop"`) until a runner starts it again.
    stopped        INTEGER NOT NULL DEFAULT 0 CHECK (stopped IN (0, 1)),
    updated_at     INTEGER NOT NULL, -- microseconds since the Unix epoch, UTC
    PRIMARY KEY (name, version, generation)
);
CREATE UNIQUE INDEX annals_projections_live ON annals_projections (name, version) WHERE live = 1;

-- The documents of document projections: JSON text per key.
CREATE TABLE annals_documents (
    name       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    key        TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    PRIMARY KEY (name, version, generation, key)
) WITHOUT ROWID;

-- Events a projection could not apply, by reference to the log (never a copy of the
-- payload), and the later events of the same document parked behind them, in order.
CREATE TABLE annals_dead_letters (
    name            TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    generation      INTEGER NOT NULL,
    transaction_id  INTEGER NOT NULL,
    position        INTEGER NOT NULL,
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL,
    event_name      TEXT    NOT NULL,
    event_version   INTEGER NOT NULL,
    key             TEXT    NOT NULL,
    error           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    first_failed_at INTEGER NOT NULL, -- microseconds since the Unix epoch, UTC
    last_failed_at  INTEGER NOT NULL,
    behind          INTEGER,          -- the position of the dead letter it waits behind
    PRIMARY KEY (name, version, generation, transaction_id, position)
) WITHOUT ROWID;

-- What was done with dead letters: retried after a fix, or discarded.
CREATE TABLE annals_dead_letter_actions (
    name    TEXT    NOT NULL,
    version INTEGER NOT NULL,
    action  TEXT    NOT NULL,
    key     TEXT    NOT NULL,
    events  INTEGER NOT NULL,
    at      INTEGER NOT NULL
);
