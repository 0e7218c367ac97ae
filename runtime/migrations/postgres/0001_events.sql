-- The event log. `{schema}` is replaced by the validated, quoted schema name.
-- Global order is (transaction_id, position): identity values are handed out before
-- commit, so a later commit can hold a lower position; transaction ids below
-- pg_snapshot_xmin(pg_current_snapshot()) belong to finished transactions, so rows
-- under that bound never gain a neighbour that sorts before them.
CREATE TABLE {schema}.annals_events (
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id      text        NOT NULL,
    stream_version bigint      NOT NULL CHECK (stream_version > 0),
    event_id       uuid        NOT NULL,
    event_name     text        NOT NULL,
    event_version  integer     NOT NULL,
    payload        jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    -- Enforces the expected version: two appends of one version cannot both commit.
    CONSTRAINT annals_events_stream_version_key UNIQUE (stream_id, stream_version),
    CONSTRAINT annals_events_event_id_key UNIQUE (event_id)
);

-- Reading all events in global order, from a checkpoint.
CREATE INDEX annals_events_global_order ON {schema}.annals_events (transaction_id, position);

-- The log is append-only (guarantee 1): the database refuses edits, whoever asks.
CREATE FUNCTION {schema}.annals_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'annals_events is append-only';
END $$;
CREATE TRIGGER annals_events_append_only BEFORE UPDATE OR DELETE ON {schema}.annals_events
    FOR EACH ROW EXECUTE FUNCTION {schema}.annals_refuse_change();
CREATE TRIGGER annals_events_no_truncate BEFORE TRUNCATE ON {schema}.annals_events
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.annals_refuse_change();

-- Wakes subscribers at commit; one notification per append statement.
CREATE FUNCTION {schema}.annals_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], '');
    RETURN NULL;
END $$;
CREATE TRIGGER annals_events_notify AFTER INSERT ON {schema}.annals_events
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.annals_notify({channel});
