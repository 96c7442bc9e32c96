-- Less work per stored event on the write path (issue #21 item 3), with every read-side
-- answer unchanged. Profiled with bench/batch_bench.py (PostgreSQL alone, 100-event
-- batches; docs/benchmarks.md, "Batches"): WAL bytes per event by part and the rollup
-- trigger's time in pg_stat_user_functions (track_functions = all).
--
-- 1. The campaign index holds only rows with a campaign. Every read that uses it filters
--    on `campaign = $n` (gateway/query/sql.py), which the planner proves implies
--    `campaign IS NOT NULL`, so the partial index answers the same queries; events without
--    a campaign (most ESPs send none) no longer add an index entry each (its WAL and a
--    B-tree insert per event; the figures are in docs/benchmarks.md).
-- 2. The hookline_rollups trigger of 0008 with two per-event costs removed:
--    * the late-day marks compared every row with date_trunc('day', clock_timestamp(),
--      'UTC'): a volatile call and a time zone lookup per event; the day's start is now
--      read once per statement;
--    * the tallies evaluated twenty-two FILTER clauses per event; the events are now
--      grouped by what the counters depend on (shape, event type, bounce class, machine
--      open, first-engagement bits) with one count each, and only those few groups are
--      spread over the counter columns. The same rows reach stats_pending (one per
--      statement and shape, the same sums), so the compactor and the reads see no change.

-- Cascades to every partition, present and future (0003).
CREATE INDEX events_campaign_set ON events (campaign, occurred_at, id)
    WHERE campaign IS NOT NULL;
DROP INDEX events_campaign;
ALTER INDEX events_campaign_set RENAME TO events_campaign;

CREATE OR REPLACE FUNCTION hookline_rollup_events() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    day_start timestamptz;
BEGIN
    WITH engaged AS MATERIALIZED (
        -- opens and clicks with the bits they can claim (1 open, 2 human open, 4 click); the
        -- key is NULL without a message id or a recipient, and then every one is a first
        SELECT CASE WHEN n.message_id IS NOT NULL AND n.recipient IS NOT NULL THEN
                   decode(md5(n.provider || E'\x1f' || n.message_id || E'\x1f'
                              || lower(n.recipient)), 'hex')
               END AS key,
               (CASE WHEN n.event_type = 'clicked' THEN 4
                     WHEN n.machine_open THEN 1 ELSE 3 END)::smallint AS kinds,
               n.id AS ord, n.occurred_at
        FROM new_events n
        WHERE n.event_type IN ('opened', 'clicked')
    ), claimed AS (
        -- one row per key (in key order: no deadlocks); "added" is the bits this statement
        -- set, and a key whose bits were all set before is not rewritten
        INSERT INTO first_engagements AS f (key, kinds, added, received_at)
        SELECT key, bit_or(kinds), bit_or(kinds), now()
        FROM engaged WHERE key IS NOT NULL
        GROUP BY key ORDER BY key
        ON CONFLICT (key) DO UPDATE
            SET added = excluded.kinds & ~f.kinds, kinds = f.kinds | excluded.kinds
            WHERE excluded.kinds & ~f.kinds <> 0
        RETURNING key, added
    ), firsts AS (
        -- each bit a key gained credits the earliest of its events in this statement
        SELECT ord, bit_or(bit) AS bits
        FROM (SELECT DISTINCT ON (e.key, b.bit) e.ord, b.bit
              FROM engaged e JOIN claimed c ON c.key = e.key,
                   (VALUES (1::smallint), (2::smallint), (4::smallint)) AS b(bit)
              WHERE e.kinds & c.added & b.bit <> 0
              ORDER BY e.key, b.bit, e.occurred_at, e.ord) AS f
        GROUP BY ord
        UNION ALL
        SELECT ord, kinds FROM engaged WHERE key IS NULL
    ), kinds AS (
        -- one count per shape and kind of event: a handful of groups per statement
        SELECT date_bin('1 hour', n.occurred_at, '2000-01-01 00:00+00') AS hour,
               n.provider, n.source, coalesce(n.campaign, '') AS campaign, n.tags,
               n.event_type, n.bounce_class, n.machine_open, coalesce(b.bits, 0) AS bits,
               count(*)::integer AS n
        FROM new_events n LEFT JOIN firsts b ON b.ord = n.id
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
    )
    INSERT INTO stats_pending (
        hour, provider, source, campaign, tags,
        queued, sent, delivered, deferred, bounced, dropped, opened, clicked, complained,
        unsubscribed, resubscribed, auto_replied, unknown, hard_bounced, soft_bounced, machine_opened,
        unique_opened, unique_human_opened, unique_clicked)
    SELECT hour, provider, source, campaign, tags,
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
           coalesce(sum(n) FILTER (WHERE event_type = 'auto_replied'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'unknown'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'bounced' AND bounce_class = 'hard'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'bounced' AND bounce_class = 'soft'), 0),
           coalesce(sum(n) FILTER (WHERE event_type = 'opened' AND machine_open), 0),
           coalesce(sum(n) FILTER (WHERE bits & 1 <> 0), 0),
           coalesce(sum(n) FILTER (WHERE bits & 2 <> 0), 0),
           coalesce(sum(n) FILTER (WHERE bits & 4 <> 0), 0)
    FROM kinds
    GROUP BY 1, 2, 3, 4, 5;

    -- Rows received on a day that has ended (a spool drained after midnight, a batch
    -- that straddled it) may change a day the worker has folded: mark it for a refold.
    -- The day's start is read once, after the rollups (as late as 0008's per-row reading).
    day_start := date_trunc('day', clock_timestamp(), 'UTC');
    INSERT INTO recipient_activity_late (day)
    SELECT DISTINCT (received_at AT TIME ZONE 'UTC')::date
    FROM new_events
    WHERE received_at < day_start
      AND recipient IS NOT NULL
      AND (event_type IN ('delivered', 'clicked') OR (event_type = 'opened' AND NOT machine_open));
    RETURN NULL;
END;
$fn$;
