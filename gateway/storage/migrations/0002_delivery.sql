-- Delivery: the outbox (the processors' work queue), the dead-letter queue, the suppression
-- list and soft-bounce tracking.
--
-- Outbox rows carry everything delivery needs (the event JSON), so workers never read the
-- partitioned events table, which retention drops a day at a time. One row per
-- (processor, sink, event): the unique index makes enqueueing and DLQ replay idempotent.

CREATE TABLE outbox (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- 'suppressions' (the suppression-list processor) or 'sink' (an HTTP sink)
    processor        text        NOT NULL CHECK (processor IN ('suppressions', 'sink')),
    -- the sink's name; '' for the suppressions processor
    sink             text        NOT NULL DEFAULT '',
    dedup_key        text        NOT NULL,
    event_type       text        NOT NULL,
    payload          jsonb       NOT NULL,
    -- W3C traceparent of the write that enqueued the row (attempt spans link to it)
    trace_context    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    due_at           timestamptz NOT NULL DEFAULT now(),
    attempts         integer     NOT NULL DEFAULT 0,
    replays          integer     NOT NULL DEFAULT 0,
    last_error       text,
    -- one JSON object per attempt: {attempt, at, status, error, duration_ms}
    history          jsonb       NOT NULL DEFAULT '[]',
    -- a worker's lease: rows are claimable again once it expires
    claimed_until    timestamptz,
    claim_token      uuid
);
CREATE UNIQUE INDEX outbox_work ON outbox (processor, sink, dedup_key);
CREATE INDEX outbox_due_at ON outbox (due_at);

-- Deliveries that exhausted their attempts or failed permanently. Nothing is dropped: rows
-- leave only through replay (back to the outbox) or an explicit delete.
CREATE TABLE dlq (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sink          text        NOT NULL,
    dedup_key     text        NOT NULL,
    event_type    text        NOT NULL,
    payload       jsonb       NOT NULL,
    trace_context text,
    -- when the event entered the outbox, and when it was dead-lettered
    enqueued_at   timestamptz NOT NULL,
    dead_at       timestamptz NOT NULL,
    -- 'exhausted' (max_attempts reached) or 'permanent' (a 4xx that retrying cannot fix)
    reason        text        NOT NULL CHECK (reason IN ('exhausted', 'permanent')),
    attempts      integer     NOT NULL,
    replays       integer     NOT NULL DEFAULT 0,
    last_status   integer,
    last_error    text        NOT NULL,
    history       jsonb       NOT NULL DEFAULT '[]'
);
CREATE UNIQUE INDEX dlq_sink_event ON dlq (sink, dedup_key);
CREATE INDEX dlq_sink_id ON dlq (sink, id);
CREATE INDEX dlq_dead_at ON dlq (dead_at);

-- The suppression list, one row per address (compared case-insensitively: address_key is
-- the lower-cased, trimmed address). A stronger reason replaces a weaker one, see
-- hookline_suppression_rank. Soft-bounce quarantines expire (expires_at); others do not.
CREATE TABLE suppressions (
    address_key  text        PRIMARY KEY,
    address      text        NOT NULL,
    reason       text        NOT NULL
        CHECK (reason IN ('hard_bounce', 'complaint', 'unsubscribe', 'soft_bounce', 'manual')),
    -- the event that caused it (NULL for manual entries)
    dedup_key    text,
    provider     text,
    occurred_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    note         text
);
CREATE INDEX suppressions_reason ON suppressions (reason, address_key);

CREATE FUNCTION hookline_suppression_rank(reason text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE reason
        WHEN 'hard_bounce' THEN 5
        WHEN 'complaint' THEN 4
        WHEN 'manual' THEN 3
        WHEN 'unsubscribe' THEN 2
        WHEN 'soft_bounce' THEN 1
        ELSE 0
    END
$$;

-- Soft bounces per address within the counting window (older rows are pruned).
CREATE TABLE soft_bounces (
    address_key text        NOT NULL,
    dedup_key   text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (address_key, dedup_key)
);
CREATE INDEX soft_bounces_occurred_at ON soft_bounces (occurred_at);
