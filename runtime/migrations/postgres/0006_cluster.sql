-- The cluster the schema was last opened on. Transaction ids order the events, and they
-- count in one cluster only: a schema restored into another must not take appends until
-- that cluster's ids are past the stored ones. Checked, and kept, on every open.
CREATE TABLE {schema}.annals_cluster (
    only_row          boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    system_identifier bigint      NOT NULL,
    opened_at         timestamptz NOT NULL DEFAULT now()
);
