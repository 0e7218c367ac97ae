-- Subscribers are no longer woken by a trigger: a NOTIFY inside the appending transaction
-- takes a database-wide lock at commit, which queued every concurrent append behind one
-- another. Stores now wake their own subscribers directly and tell other processes with a
-- NOTIFY of their own, after the commit, at most one at a time.
DROP TRIGGER IF EXISTS annals_events_notify ON {schema}.annals_events;
DROP FUNCTION IF EXISTS {schema}.annals_notify();
