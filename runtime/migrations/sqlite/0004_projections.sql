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
