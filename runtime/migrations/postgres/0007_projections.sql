-- The projections' progress: one row per read model, its generation and its checkpoint
-- (the transaction id and position of the last event it applied or passed over). Readers
-- see the generation marked `live`; a rebuild writes another beside it.
CREATE TABLE {schema}.annals_projections (
    name           text        NOT NULL,
    version        integer     NOT NULL,
    generation     integer     NOT NULL,
    transaction_id bigint      NOT NULL DEFAULT 0,
    position       bigint      NOT NULL DEFAULT 0,
    live           boolean     NOT NULL DEFAULT true,
    -- Applied inline by the stores that append (inside each append): runners leave it.
    inline         boolean     NOT NULL DEFAULT false,
    -- Why its runner's last batch failed, while it fails; NULL otherwise.
    failure        text,
    -- Halted on that failure (`on_error = "stop"`) until a runner starts it again.
    stopped        boolean     NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version, generation)
);
CREATE UNIQUE INDEX annals_projections_live ON {schema}.annals_projections (name, version) WHERE live;

-- The documents of document projections, queryable with SQL as `jsonb`.
CREATE TABLE {schema}.annals_documents (
    name       text    NOT NULL,
    version    integer NOT NULL,
    generation integer NOT NULL,
    key        text    COLLATE "C" NOT NULL, -- byte order, as on every store
    body       jsonb   NOT NULL,
    PRIMARY KEY (name, version, generation, key)
);

-- Each projection's live documents, for queries of your own.
CREATE VIEW {schema}.annals_live_documents AS
SELECT d.name, d.version, d.key, d.body
FROM {schema}.annals_documents d
JOIN {schema}.annals_projections p
  ON p.name = d.name AND p.version = d.version AND p.generation = d.generation AND p.live;

-- Events a projection could not apply, by reference to the log (never a copy of the
-- payload), and the later events of the same document parked behind them, in order.
CREATE TABLE {schema}.annals_dead_letters (
    name            text        NOT NULL,
    version         integer     NOT NULL,
    generation      integer     NOT NULL,
    transaction_id  bigint      NOT NULL,
    position        bigint      NOT NULL,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL,
    event_name      text        NOT NULL,
    event_version   integer     NOT NULL,
    key             text        COLLATE "C" NOT NULL,
    error           text        NOT NULL,
    attempts        integer     NOT NULL,
    first_failed_at timestamptz NOT NULL,
    last_failed_at  timestamptz NOT NULL,
    behind          bigint,     -- the position of the dead letter it waits behind
    PRIMARY KEY (name, version, generation, transaction_id, position)
);

-- What was done with dead letters: retried after a fix, or discarded.
CREATE TABLE {schema}.annals_dead_letter_actions (
    name    text        NOT NULL,
    version integer     NOT NULL,
    action  text        NOT NULL,
    key     text        NOT NULL,
    events  bigint      NOT NULL,
    at      timestamptz NOT NULL DEFAULT now()
);
