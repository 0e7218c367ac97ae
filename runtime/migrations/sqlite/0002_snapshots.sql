-- Snapshots are a cache (guarantee 6): the newest per stream, replaced in place, never
-- trusted blindly (the reader checks fingerprint, version and JSON).
CREATE TABLE annals_snapshots (
    stream_id   TEXT    PRIMARY KEY,
    version     INTEGER NOT NULL CHECK (version > 0),
    fingerprint INTEGER NOT NULL, -- the u64 fingerprint's bits as a signed integer
    state       TEXT    NOT NULL, -- JSON, as written
    taken_at    INTEGER NOT NULL  -- microseconds since the Unix epoch, UTC
);
