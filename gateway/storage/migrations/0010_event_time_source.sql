-- Where each event's occurred_at came from (issue #17): 'event' (the ESP's own time for the
-- event), 'envelope' (the event had none: the time of the request that carried it, e.g. a
-- signed timestamp header or the SNS envelope's Timestamp) or 'received' (neither: when the
-- gateway received it). handlers.events.TimeSource holds the values; the adapters set it
-- (handlers._common.event_time). Rows stored before this migration read as 'event', as
-- they were presented until now. A constant default rewrites no rows; no CHECK constraint,
-- which would scan every partition of a large table at upgrade.
ALTER TABLE events ADD COLUMN time_source text NOT NULL DEFAULT 'event';
