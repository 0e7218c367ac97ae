-- The parts of sharded projections (`#[projection(shards = N)]`): each applies the documents
-- whose keys hash to it, with a checkpoint of its own, so several runners share the work.
-- The generation and whether readers see it stay in `annals_projections`.
CREATE TABLE {schema}.annals_projection_shards (
    name           text        NOT NULL,
    version        integer     NOT NULL,
    generation     integer     NOT NULL,
    shard          integer     NOT NULL,
    shards         integer     NOT NULL CHECK (shard >= 0 AND shard < shards),
    transaction_id bigint      NOT NULL DEFAULT 0,
    position       bigint      NOT NULL DEFAULT 0,
    -- The part has caught up with the log once: a new version or a rebuild takes over
    -- when every part of its generation has.
    caught_up      boolean     NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version, generation, shard)
);
