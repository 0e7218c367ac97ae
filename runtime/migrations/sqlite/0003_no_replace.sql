-- `INSERT OR REPLACE` (and `REPLACE`) resolves a conflict by deleting the stored row, and
-- that delete fires no DELETE trigger unless the connection turned `recursive_triggers` on:
-- another tool could rewrite a stored event. Refuse the insert before it gets that far,
-- naming the column in the message (the store tells a lost race from a retried append by it).
CREATE TRIGGER annals_events_no_replace_position BEFORE INSERT ON annals_events
WHEN EXISTS (SELECT 1 FROM annals_events WHERE position = NEW.position)
BEGIN SELECT RAISE(ABORT, 'annals_events is append-only: a row with this position is stored'); END;

CREATE TRIGGER annals_events_no_replace_event_id BEFORE INSERT ON annals_events
WHEN EXISTS (SELECT 1 FROM annals_events WHERE event_id = NEW.event_id)
BEGIN SELECT RAISE(ABORT, 'annals_events is append-only: a row with this event_id is stored'); END;

CREATE TRIGGER annals_events_no_replace_version BEFORE INSERT ON annals_events
WHEN EXISTS (SELECT 1 FROM annals_events
             WHERE stream_id = NEW.stream_id AND stream_version = NEW.stream_version)
BEGIN SELECT RAISE(ABORT, 'annals_events is append-only: a row with this stream_id and stream_version is stored'); END;
