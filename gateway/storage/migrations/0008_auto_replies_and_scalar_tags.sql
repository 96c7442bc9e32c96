-- Auto-replies are not bounces (issue #17). ESPs report vacation responders and
-- challenge-response probes among their bounces (SparkPost bounce classes 60 and 100,
-- Postmark bounce types AutoResponder and ChallengeVerification); they are now stored as
-- event type 'auto_replied', which never suppresses and never counts as a bounce, and the
-- rollups count them in a column of their own (gateway.query.counters: one column per
-- event type). Adding a column with a constant default rewrites no rows.
ALTER TABLE stats_hourly ADD COLUMN auto_replied bigint NOT NULL DEFAULT 0;
ALTER TABLE stats_hourly_tags ADD COLUMN auto_replied bigint NOT NULL DEFAULT 0;
ALTER TABLE stats_pending ADD COLUMN auto_replied integer NOT NULL DEFAULT 0;

-- The trigger of 0006 with the auto_replied counter; nothing else changed.
CREATE OR REPLACE FUNCTION hookline_rollup_events() RETURNS trigger
LANGUAGE plpgsql AS $fn$
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
    )
    INSERT INTO stats_pending (
        hour, provider, source, campaign, tags,
        queued, sent, delivered, deferred, bounced, dropped, opened, clicked, complained,
        unsubscribed, resubscribed, auto_replied, unknown, hard_bounced, soft_bounced, machine_opened,
        unique_opened, unique_human_opened, unique_clicked)
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
           count(*) FILTER (WHERE n.event_type = 'auto_replied') AS auto_replied,
           count(*) FILTER (WHERE n.event_type = 'unknown') AS unknown,
           count(*) FILTER (WHERE n.event_type = 'bounced' AND n.bounce_class = 'hard') AS hard_bounced,
           count(*) FILTER (WHERE n.event_type = 'bounced' AND n.bounce_class = 'soft') AS soft_bounced,
           count(*) FILTER (WHERE n.event_type = 'opened' AND n.machine_open) AS machine_opened,
           count(*) FILTER (WHERE b.bits & 1 <> 0) AS unique_opened,
           count(*) FILTER (WHERE b.bits & 2 <> 0) AS unique_human_opened,
           count(*) FILTER (WHERE b.bits & 4 <> 0) AS unique_clicked
    FROM new_events n LEFT JOIN firsts b ON b.ord = n.id
    GROUP BY 1, 2, 3, 4, 5;

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

-- SES message tags were stored as arrays of strings ({"gw_message_id": ["gw-7c1e2a"]})
-- where every other provider stores scalars, so metadata=key:value missed SES. The adapter
-- now stores single-valued tags as scalars (handlers.ses.scalar_tags); this fixes the rows
-- already stored the same way. Bounded: only SES rows holding a one-element array, in one
-- statement (an UPDATE takes row locks only: ingest keeps inserting meanwhile).
UPDATE events AS e
SET metadata = (
    SELECT jsonb_object_agg(
        t.key,
        CASE WHEN jsonb_typeof(t.value) = 'array' AND jsonb_array_length(t.value) = 1
             THEN t.value -> 0 ELSE t.value END)
    FROM jsonb_each(e.metadata) AS t
)
WHERE e.provider = 'ses'
  AND jsonb_typeof(e.metadata) = 'object'
  AND EXISTS (
      SELECT 1 FROM jsonb_each(e.metadata) AS t
      WHERE jsonb_typeof(t.value) = 'array' AND jsonb_array_length(t.value) = 1
  );
