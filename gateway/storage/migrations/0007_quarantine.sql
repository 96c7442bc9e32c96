-- Quarantine (issue #16): records Hookline acknowledged but could not store as events.
-- stage 'parse': an adapter rejected one item of a well-formed batch (raw holds the item);
-- stage 'store': PostgreSQL refused the normalized event (event holds it as msgpack, exactly
-- as the spool keeps it, so a replay writes the very same event).
CREATE TABLE quarantine (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider      text        NOT NULL,
    source        text        NOT NULL,
    received_at   timestamptz NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    stage         text        NOT NULL CHECK (stage IN ('parse', 'store')),
    reason        text        NOT NULL,
    field         text,
    error         text        NOT NULL,
    dedup_key     text,
    raw           jsonb,
    event         bytea,
    replayed_at   timestamptz,
    replay_error  text
);
CREATE INDEX quarantine_provider_id ON quarantine (provider, id);
-- a redelivered or re-drained poison event is kept once while it waits
CREATE UNIQUE INDEX quarantine_store_pending ON quarantine (dedup_key)
    WHERE stage = 'store' AND replayed_at IS NULL;
