-- Snapshots are a cache (guarantee 6): the newest per stream, replaced in place, never
-- trusted blindly (the reader checks fingerprint, version and JSON). `state` is text, not
-- jsonb: it is read back whole, never queried, and a corrupt row must stay readable.
CREATE TABLE {schema}.annals_snapshots (
    stream_id   text        PRIMARY KEY,
    version     bigint      NOT NULL CHECK (version > 0),
    fingerprint bigint      NOT NULL, -- the u64 fingerprint's bits as a signed integer
    state       text        NOT NULL,
    taken_at    timestamptz NOT NULL DEFAULT now()
);
