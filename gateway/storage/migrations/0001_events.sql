-- Events, partitioned by day of receipt so retention drops whole partitions.
-- Idempotency lives in event_keys (not partitioned): a unique constraint on a partitioned
-- table would have to include the partition key, and a redelivered event has a new
-- received_at. event_keys is a narrow table: one text key and a timestamp per event.

CREATE TABLE event_keys (
    dedup_key   text        PRIMARY KEY,
    received_at timestamptz NOT NULL
);
CREATE INDEX event_keys_received_at ON event_keys (received_at);

CREATE TABLE events (
    id                bigint      GENERATED ALWAYS AS IDENTITY,
    dedup_key         text        NOT NULL,
    provider          text        NOT NULL,
    source            text        NOT NULL,
    event_type        text        NOT NULL,
    esp_event         text,
    occurred_at       timestamptz NOT NULL,
    received_at       timestamptz NOT NULL,
    recipient         text,
    message_id        text,
    provider_event_id text,
    bounce_class      text,
    reason            text,
    smtp_status       text,
    diagnostic        text,
    url               text,
    user_agent        text,
    ip                text,
    machine_open      boolean     NOT NULL DEFAULT false,
    campaign          text,
    tags              text[]      NOT NULL DEFAULT '{}',
    metadata          jsonb       NOT NULL DEFAULT '{}',
    raw               jsonb,
    PRIMARY KEY (received_at, id)
) PARTITION BY RANGE (received_at);

-- Anything outside the daily partitions (clock skew) lands here rather than failing.
CREATE TABLE events_default PARTITION OF events DEFAULT;

-- Creates the daily partition holding `day` if it does not exist yet.
CREATE FUNCTION hookline_ensure_event_partition(day date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    name text := 'events_' || to_char(day, 'YYYYMMDD');
BEGIN
    IF to_regclass(name) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
            name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC'
        );
    END IF;
    RETURN name;
END;
$$;

-- Nonces of signature schemes that do not cover the whole body (Mailgun's token): the same
-- nonce with the same content is a redelivery, with other content a forgery.
CREATE TABLE webhook_nonces (
    provider text        NOT NULL,
    source   text        NOT NULL,
    nonce    text        NOT NULL,
    digest   text        NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, source, nonce)
);
CREATE INDEX webhook_nonces_seen_at ON webhook_nonces (seen_at);

-- Non-event messages from ESPs (SNS subscription confirmations), visible to operators.
CREATE TABLE control_messages (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider     text        NOT NULL,
    source       text        NOT NULL,
    kind         text        NOT NULL,
    detail       jsonb       NOT NULL DEFAULT '{}',
    confirm_url  text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    confirmed_at timestamptz,
    confirm_error text
);
