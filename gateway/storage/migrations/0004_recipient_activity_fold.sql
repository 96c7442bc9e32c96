-- Recipient activity leaves the write path (issue #7's ingest budget: the per-batch
-- recipient upsert was the largest share of the rollups' cost at 10M events). The worker's
-- ActivityFolder (gateway/query/activity.py) now folds each UTC day of received events into
-- recipient_activity once the day has ended; reads merge the folded rows with the events
-- not folded yet. The hookline_rollups trigger keeps the first engagements and the hourly
-- counter deltas, and marks the days that receive rows after they ended.

-- Every day before open_from is folded. Up to now the trigger kept recipient_activity for
-- every stored event; today's rows are folded again with the rest of today (a fold merges
-- with LEAST / GREATEST, so folding twice changes nothing).
CREATE TABLE recipient_activity_fold (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    open_from date    NOT NULL
);
INSERT INTO recipient_activity_fold (open_from) VALUES ((now() AT TIME ZONE 'UTC')::date);

-- Days (UTC, of received_at) that received delivery or engagement rows after they ended:
-- the folder folds them again and deletes the marks. Append-only between folds, no index.
CREATE TABLE recipient_activity_late (day date NOT NULL);

-- As in 0003, without the recipient upsert, plus the late-day marks.
CREATE OR REPLACE FUNCTION hookline_rollup_events() RETURNS trigger
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
    )
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
    FROM tag_combos GROUP BY 1, 2, 3, 4;
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
