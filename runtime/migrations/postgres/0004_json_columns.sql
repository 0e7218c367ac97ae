-- Payload and metadata are written and read whole, never searched by the store: `json`
-- keeps the text as written (validated on the way in) and hands it back as it is, where
-- `jsonb` parses it into a tree on every insert and prints it again on every read.
-- Queries of your own still work: `payload->>'field'`, or `payload::jsonb` for indexing.
ALTER TABLE {schema}.annals_events
    ALTER COLUMN payload TYPE json USING payload::json,
    ALTER COLUMN metadata TYPE json USING metadata::json;
