-- A leaner hookline_rollups trigger (issue #7's ingest budget). It no longer upserts
-- recipient_activity (0004: the worker folds it per day) and marks the days that receive
-- rows after they ended. The same rollups as 0003, with less work per event (measured in
-- the trigger with bench/query_bench.py):
--   * the tag rollups are summed from per-shape tallies (the statement's events grouped by
--     hour, provider, source, campaign and tag list: far fewer rows than events) instead of
--     unnesting every event's tags, which was a third of the trigger;
--   * one aggregate per rollup, counting with integer sums, over the transition table itself
--     (no copies of the events into materialized CTEs);
--   * the hour by date_bin from a UTC midnight (date_trunc in a named zone looks the zone up
--     for every row).
CREATE OR REPLACE FUNCTION hookline_rollup_events() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    WITH engaged AS MATERIALIZED (
        -- opens and clicks, a row per kind (1 open, 2 human open, 3 click); the key is NULL
        -- without a message id or a recipient, and then every one of them is a first
        SELECT CASE WHEN n.message_id IS NOT NULL AND n.recipient IS NOT NULL THEN
                   decode(md5(n.provider || E'\x1f' || n.message_id || E'\x1f'
                              || lower(n.recipient)), 'hex')
               END AS key,
               k.kind, n.id AS ord, n.occurred_at
        FROM new_events n,
             unnest(CASE WHEN n.event_type = 'clicked' THEN ARRAY[3]
                         WHEN n.machine_open THEN ARRAY[1] ELSE ARRAY[1, 2] END) AS k(kind)
        WHERE n.event_type IN ('opened', 'clicked')
    ), inserted AS (
        -- the rows that go in are the first engagements (in key order: no deadlocks)
        INSERT INTO first_engagements (key, kind, received_at)
        SELECT key, kind::smallint, now() FROM engaged WHERE key IS NOT NULL
        ORDER BY key, kind
        ON CONFLICT DO NOTHING
        RETURNING key, kind
    ), firsts AS (
        -- each new (key, kind) credits the earliest of its events in this statement
        SELECT ord, bit_or(1 << (kind - 1)) AS bits
        FROM (SELECT DISTINCT ON (e.key, e.kind) e.ord, e.kind
              FROM engaged e JOIN inserted i ON i.key = e.key AND i.kind = e.kind
              ORDER BY e.key, e.kind, e.occurred_at, e.ord) AS f
        GROUP BY ord
        UNION ALL
        SELECT ord, bit_or(1 << (kind - 1)) FROM engaged WHERE key IS NULL GROUP BY ord
    ), shapes AS MATERIALIZED (
        SELECT date_bin('1 hour', n.occurred_at, '2000-01-01 00:00+00') AS hour,
               n.provider, n.source, coalesce(n.campaign, '') AS campaign, n.tags,
               count(*) FILTER (WHERE n.event_type = 'queued') AS queued,
               count(*) FILTER (WHERE n.event_type = 'sent') AS sent,
               count(*) FILTER (WHERE n.event_type = 'delivered') AS delivered,
               count(*) FILTER (WHERE n.event_type = 'deferred') AS deferred,
               count(*) FILTER (WHERE n.event_type = 'bounced') AS bounced,
               count(*) FILTER (WHERE n.event_type = 'dropped') AS dropped,
               count(*) FILTER (WHERE n.event_type = 'opened') AS opened,
               count(*) FILTER (WHERE n.event_type = 'clicked') AS clicked,
               count(*) FILTER (WHERE n.event_type = 'complained') AS complained,
               count(*) FILTER (WHERE n.event_type = 'unsubscribed') AS unsubscribed,
               count(*) FILTER (WHERE n.event_type = 'resubscribed') AS resubscribed,
               count(*) FILTER (WHERE n.event_type = 'unknown') AS unknown,
               count(*) FILTER (WHERE n.event_type = 'bounced' AND n.bounce_class = 'hard') AS hard_bounced,
               count(*) FILTER (WHERE n.event_type = 'bounced' AND n.bounce_class = 'soft') AS soft_bounced,
               count(*) FILTER (WHERE n.event_type = 'opened' AND n.machine_open) AS machine_opened,
               count(*) FILTER (WHERE b.bits & 1 <> 0) AS unique_opened,
               count(*) FILTER (WHERE b.bits & 2 <> 0) AS unique_human_opened,
               count(*) FILTER (WHERE b.bits & 4 <> 0) AS unique_clicked
        FROM new_events n LEFT JOIN firsts b ON b.ord = n.id
        GROUP BY 1, 2, 3, 4, 5
    ), hourly AS (
        INSERT INTO stats_hourly_pending (
            hour, provider, source, campaign,
            queued, sent, delivered, deferred, bounced, dropped, opened, clicked,
            complained, unsubscribed, resubscribed, unknown, hard_bounced, soft_bounced,
            machine_opened, unique_opened, unique_human_opened, unique_clicked)
        SELECT hour, provider, source, campaign,
           sum(queued::integer), sum(sent::integer), sum(delivered::integer),
           sum(deferred::integer), sum(bounced::integer), sum(dropped::integer),
           sum(opened::integer), sum(clicked::integer), sum(complained::integer),
           sum(unsubscribed::integer), sum(resubscribed::integer), sum(unknown::integer),
           sum(hard_bounced::integer), sum(soft_bounced::integer),
           sum(machine_opened::integer), sum(unique_opened::integer),
           sum(unique_human_opened::integer), sum(unique_clicked::integer)
        FROM shapes GROUP BY 1, 2, 3, 4
        RETURNING 1
    )
    INSERT INTO stats_hourly_tags_pending (
        hour, tag, provider, source,
        queued, sent, delivered, deferred, bounced, dropped, opened, clicked, complained,
        unsubscribed, resubscribed, unknown, hard_bounced, soft_bounced, machine_opened,
        unique_opened, unique_human_opened, unique_clicked)
    SELECT hour, t.tag, provider, source,
           sum(queued::integer), sum(sent::integer), sum(delivered::integer),
           sum(deferred::integer), sum(bounced::integer), sum(dropped::integer),
           sum(opened::integer), sum(clicked::integer), sum(complained::integer),
           sum(unsubscribed::integer), sum(resubscribed::integer), sum(unknown::integer),
           sum(hard_bounced::integer), sum(soft_bounced::integer),
           sum(machine_opened::integer), sum(unique_opened::integer),
           sum(unique_human_opened::integer), sum(unique_clicked::integer)
    FROM shapes, unnest(tags) WITH ORDINALITY AS t(tag, i)
    WHERE t.tag <> ALL (tags[:t.i - 1])  -- a tag repeated in one event counts once
    GROUP BY 1, 2, 3, 4;

    -- Rows received on a day that has ended (a spool drained after midnight, a batch
    -- that straddled it) may change a day the worker has folded: mark it for a refold.
    INSERT INTO recipient_activity_late (day)
    SELECT DISTINCT (received_at AT TIME ZONE 'UTC')::date
    FROM new_events
    WHERE received_at < date_trunc('day', clock_timestamp(), 'UTC')
      AND recipient IS NOT NULL
      AND (event_type IN ('delivered', 'clicked') OR (event_type = 'opened' AND NOT machine_open));
    RETURN NULL;
END;
$fn$;
