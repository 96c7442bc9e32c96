-- The read side (issue #7): indexes for the query shapes, hourly rollups for the
-- deliverability stats, first engagements (unique opens and clicks) and per-recipient
-- activity (inactive recipients), all written by the hookline_rollups trigger (at the end)
-- in the same transaction as the events (the hourly counters by way of the *_pending delta
-- tables, which the worker's RollupCompactor folds into the rollups).
--
-- Indexes created on the partitioned parent cascade to every partition, present and future.

-- GET /v1/events with no selective filter: newest first, keyset on (occurred_at, id).
CREATE INDEX events_occurred_at_id ON events (occurred_at, id);
-- GET /v1/messages/{id} and ?message_id=
CREATE INDEX events_message_id ON events (message_id, occurred_at, id);
-- GET /v1/recipients/{address} and ?recipient= (case-insensitive)
CREATE INDEX events_recipient ON events (lower(recipient), occurred_at, id);
-- ?campaign=
CREATE INDEX events_campaign ON events (campaign, occurred_at, id);
-- ?tag= (tags @> ARRAY[...])
CREATE INDEX events_tags ON events USING gin (tags);
-- ?metadata=key:value (metadata @> '{"key": "value"}')
CREATE INDEX events_metadata ON events USING gin (metadata jsonb_path_ops);

-- One row per UTC hour (of occurred_at), provider, source and campaign ('' for none): one
-- counter per event type plus the breakdowns the rates need.
CREATE TABLE stats_hourly (
    hour                timestamptz NOT NULL,
    provider            text        NOT NULL,
    source              text        NOT NULL,
    campaign            text        NOT NULL,
    queued              bigint      NOT NULL DEFAULT 0,
    sent                bigint      NOT NULL DEFAULT 0,
    delivered           bigint      NOT NULL DEFAULT 0,
    deferred            bigint      NOT NULL DEFAULT 0,
    bounced             bigint      NOT NULL DEFAULT 0,
    dropped             bigint      NOT NULL DEFAULT 0,
    opened              bigint      NOT NULL DEFAULT 0,
    clicked             bigint      NOT NULL DEFAULT 0,
    complained          bigint      NOT NULL DEFAULT 0,
    unsubscribed        bigint      NOT NULL DEFAULT 0,
    resubscribed        bigint      NOT NULL DEFAULT 0,
    unknown             bigint      NOT NULL DEFAULT 0,
    hard_bounced        bigint      NOT NULL DEFAULT 0,
    soft_bounced        bigint      NOT NULL DEFAULT 0,
    machine_opened      bigint      NOT NULL DEFAULT 0,
    unique_opened       bigint      NOT NULL DEFAULT 0,
    unique_human_opened bigint      NOT NULL DEFAULT 0,
    unique_clicked      bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, provider, source, campaign)
);

-- The same counters per tag (an event with two tags counts in both tags' rows), not split
-- by campaign: tags cross campaigns, and the extra key multiplied the rows per batch.
CREATE TABLE stats_hourly_tags (
    LIKE stats_hourly INCLUDING DEFAULTS,
    tag text NOT NULL,
    PRIMARY KEY (hour, tag, provider, source)
);
ALTER TABLE stats_hourly_tags DROP COLUMN campaign;

-- The first open / human (non-machine) open / click of each message for each recipient:
-- an insert that does not conflict is a unique open or click. key: the 16-byte md5 digest
-- of provider, message id and lower-cased recipient (spread and fixed in size; not a
-- security boundary); kind: 1 open, 2 human open, 3 click.
-- Pruned with the retention (BRIN: nearly free to maintain on an append-mostly table).
CREATE TABLE first_engagements (
    key         bytea       NOT NULL,
    kind        smallint    NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (key, kind)
);
CREATE INDEX first_engagements_received_at ON first_engagements
    USING brin (received_at) WITH (autosummarize = on);

-- Per recipient (lower-cased): the UTC days of the first and last delivery and of the last
-- human open or click. Days, not instants: a second touch on the same day changes nothing
-- and is not rewritten. Kept past the event retention, like the rollups.
-- fillfactor leaves room on each page so the updates are HOT (no index write).
CREATE TABLE recipient_activity (
    address            text PRIMARY KEY,
    first_delivered_on date,
    last_delivered_on  date,
    last_engaged_on    date
) WITH (fillfactor = 80);

-- Rollup deltas not folded in yet: each write statement tallies its events per hour,
-- provider, source, campaign (and per tag) and appends those rows here: plain inserts into
-- tables without indexes, so concurrent batches never wait on each other. The worker's
-- RollupCompactor folds them into stats_hourly / stats_hourly_tags every few seconds;
-- reads add both, so the stats are exact at any moment. (Upserting the current hour's
-- counters in the write transaction made concurrent batches queue on the hot rows.)
CREATE TABLE stats_hourly_pending (LIKE stats_hourly INCLUDING DEFAULTS);
CREATE TABLE stats_hourly_tags_pending (LIKE stats_hourly_tags INCLUDING DEFAULTS);

-- The rollups are maintained by this statement-level trigger, in the transaction of the
-- COPY (or INSERT) that stored the events, from the transition table of that statement:
-- set-based SQL, no extra round trip and no Python on the ingest path (the gateway's event
-- loop is the ingest bottleneck, so work done there costs throughput directly; measured in
-- bench/query_bench.py). Per statement it
--   * offers the first open / human open / click of each (message, recipient) among the new
--     events to first_engagements; the rows that go in are the unique opens and clicks;
--   * appends the counter deltas per hour, provider, source, campaign and per hour, tag,
--     provider, source to the *_pending tables (plain inserts: concurrent batches never
--     wait on each other's hot counter rows);
--   * upserts the recipients' delivery / engagement days (key order: no deadlocks).
CREATE FUNCTION hookline_rollup_events() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    WITH facts AS MATERIALIZED (
        SELECT n.id AS ord,
               date_trunc('hour', n.occurred_at, 'UTC') AS hour,
               n.provider, n.source, coalesce(n.campaign, '') AS campaign, n.event_type,
               n.bounce_class, n.machine_open, n.message_id, n.recipient, n.occurred_at,
               n.tags
        FROM new_events n
    ), engaged AS (
        SELECT f.ord, f.occurred_at, k.kind,
               CASE WHEN f.message_id IS NOT NULL AND f.recipient IS NOT NULL THEN
                   decode(md5(f.provider || E'\x1f' || f.message_id || E'\x1f'
                              || lower(f.recipient)), 'hex')
               END AS key
        FROM facts f,
             unnest(CASE WHEN f.event_type = 'opened' AND f.machine_open THEN ARRAY[1]
                         WHEN f.event_type = 'opened' THEN ARRAY[1, 2]
                         WHEN f.event_type = 'clicked' THEN ARRAY[3] END) AS k(kind)
    ), candidates AS (
        SELECT DISTINCT ON (key, kind) key, kind, ord
        FROM engaged WHERE key IS NOT NULL
        ORDER BY key, kind, occurred_at, ord
    ), inserted AS (
        INSERT INTO first_engagements (key, kind, received_at)
        SELECT key, kind::smallint, now() FROM candidates ORDER BY key, kind
        ON CONFLICT DO NOTHING
        RETURNING key, kind
    ), firsts AS (
        SELECT ord, sum(1 << (kind - 1))::integer AS bits
        FROM (SELECT c.ord, c.kind FROM candidates c JOIN inserted i USING (key, kind)
              UNION ALL
              SELECT ord, kind FROM engaged WHERE key IS NULL) AS x
        GROUP BY ord
    ), scored AS MATERIALIZED (
        SELECT f.*, coalesce(x.bits, 0) AS firsts
        FROM facts f LEFT JOIN firsts x USING (ord)
    ), combos AS (
        SELECT hour, provider, source, campaign, event_type, bounce_class, machine_open,
               firsts, count(*) AS n
        FROM scored GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
    ), hourly AS (
        INSERT INTO stats_hourly_pending (hour, provider, source, campaign, queued, sent, delivered, deferred, bounced, dropped, opened, clicked, complained,
        unsubscribed, resubscribed, unknown, hard_bounced, soft_bounced, machine_opened,
        unique_opened, unique_human_opened, unique_clicked)
        SELECT hour, provider, source, campaign,
           coalesce(sum(n) FILTER (WHERE event_type = 'queued'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'sent'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'delivered'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'deferred'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'bounced'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'dropped'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'opened'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'clicked'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'complained'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'unsubscribed'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'resubscribed'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'unknown'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'bounced' AND bounce_class = 'hard'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'bounced' AND bounce_class = 'soft'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'opened' AND machine_open), 0),
           coalesce(sum(n) FILTER (WHERE firsts & 1 <> 0), 0),
           coalesce(sum(n) FILTER (WHERE firsts & 2 <> 0), 0),
           coalesce(sum(n) FILTER (WHERE firsts & 4 <> 0), 0)
        FROM combos GROUP BY 1, 2, 3, 4
        RETURNING 1
    ), tag_combos AS (
        SELECT s.hour, t.tag, s.provider, s.source, s.event_type, s.bounce_class,
               s.machine_open, s.firsts, count(*) AS n
        FROM scored s, unnest(s.tags) WITH ORDINALITY AS t(tag, i)
        WHERE t.tag <> ALL (s.tags[:t.i - 1])  -- a tag repeated in one event counts once
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
    ), tagged AS (
        INSERT INTO stats_hourly_tags_pending (hour, tag, provider, source, queued, sent, delivered, deferred, bounced, dropped, opened, clicked, complained,
        unsubscribed, resubscribed, unknown, hard_bounced, soft_bounced, machine_opened,
        unique_opened, unique_human_opened, unique_clicked)
        SELECT hour, tag, provider, source,
           coalesce(sum(n) FILTER (WHERE event_type = 'queued'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'sent'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'delivered'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'deferred'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'bounced'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'dropped'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'opened'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'clicked'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'complained'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'unsubscribed'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'resubscribed'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'unknown'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'bounced' AND bounce_class = 'hard'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'bounced' AND bounce_class = 'soft'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'opened' AND machine_open), 0),
           coalesce(sum(n) FILTER (WHERE firsts & 1 <> 0), 0),
           coalesce(sum(n) FILTER (WHERE firsts & 2 <> 0), 0),
           coalesce(sum(n) FILTER (WHERE firsts & 4 <> 0), 0)
        FROM tag_combos GROUP BY 1, 2, 3, 4
        RETURNING 1
    )
    INSERT INTO recipient_activity AS a
        (address, first_delivered_on, last_delivered_on, last_engaged_on)
    SELECT lower(recipient),
           min((occurred_at AT TIME ZONE 'UTC')::date) FILTER (WHERE event_type = 'delivered'),
           max((occurred_at AT TIME ZONE 'UTC')::date) FILTER (WHERE event_type = 'delivered'),
           max((occurred_at AT TIME ZONE 'UTC')::date) FILTER (WHERE event_type <> 'delivered')
    FROM scored
    WHERE recipient IS NOT NULL
      AND (event_type IN ('delivered', 'clicked') OR (event_type = 'opened' AND NOT machine_open))
    GROUP BY 1 ORDER BY 1
    ON CONFLICT (address) DO UPDATE SET
        first_delivered_on = LEAST(a.first_delivered_on, excluded.first_delivered_on),
        last_delivered_on = GREATEST(a.last_delivered_on, excluded.last_delivered_on),
        last_engaged_on = GREATEST(a.last_engaged_on, excluded.last_engaged_on)
    WHERE LEAST(a.first_delivered_on, excluded.first_delivered_on)
              IS DISTINCT FROM a.first_delivered_on
       OR GREATEST(a.last_delivered_on, excluded.last_delivered_on)
              IS DISTINCT FROM a.last_delivered_on
       OR GREATEST(a.last_engaged_on, excluded.last_engaged_on)
              IS DISTINCT FROM a.last_engaged_on;
    RETURN NULL;
END;
$fn$;

CREATE TRIGGER hookline_rollups AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION hookline_rollup_events();
