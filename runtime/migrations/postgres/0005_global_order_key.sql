-- The global order is the table's key: (transaction_id, position) is unique because the
-- position is, and readers walk it. A separate key on the position alone was one more
-- index to update on every append, and no query used it.
ALTER TABLE {schema}.annals_events DROP CONSTRAINT annals_events_pkey;
DROP INDEX {schema}.annals_events_global_order;
ALTER TABLE {schema}.annals_events
    ADD CONSTRAINT annals_events_pkey PRIMARY KEY (transaction_id, position);
