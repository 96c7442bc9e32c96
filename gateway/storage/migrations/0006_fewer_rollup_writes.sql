-- Fewer rows written per event by the hookline_rollups trigger (issue #7's ingest budget;
-- each change below measured in the trigger with pg_stat_user_functions and the benches in
-- bench/).
--
-- 1. First engagements as one row per message and recipient, with a bit per kind. 0003
--    stored a row per kind: a human open wrote two rows (an open and a human open) and a
--    click a third. Now the first open or click of a (provider, message id, recipient)
--    writes one row, a later kind sets its bit in place (a HOT update: no indexed column
--    changes), and a repeat writes nothing.
--    key: the 16-byte md5 digest of provider, message id and lower-cased recipient (spread
--    and fixed in size; not a security boundary). kinds: 1 open, 2 human open, 4 click.
--    added: the bits the row's last write set, which the trigger reads back (RETURNING
--    gives only the new row). received_at: when the key was first seen, for retention.
--
-- 2. One pending row per shape instead of one per rollup key. The trigger groups a
--    statement's events by hour, provider, source, campaign and tag list (a "shape") and
--    used to sum those tallies again into stats_hourly_pending and, per tag, into
--    stats_hourly_tags_pending: nearly a row per event of varied traffic. It now appends
--    the shapes themselves to stats_pending (fewer rows, integer counters),
--    and the compactor folds them into both rollups in bulk; reads add the pending shapes
--    (per tag, unnested) to the rollups as before, so the stats stay exact at any moment.
CREATE TABLE first_engagement_bits (
    key         bytea       PRIMARY KEY,
    kinds       smallint    NOT NULL,
    added       smallint    NOT NULL,
    received_at timestamptz NOT NULL
);
INSERT INTO first_engagement_bits (key, kinds, added, received_at)
SELECT key, bit_or(1 << (kind - 1))::smallint, 0, min(received_at)
FROM first_engagements GROUP BY key ORDER BY key;
DROP TABLE first_engagements;
ALTER TABLE first_engagement_bits RENAME TO first_engagements;
ALTER INDEX first_engagement_bits_pkey RENAME TO first_engagements_pkey;
CREATE INDEX first_engagements_received_at ON first_engagements
    USING brin (received_at) WITH (autosummarize = on);

-- The rollup tallies not folded yet: a row per statement and shape. The compactor moves
-- them into stats_hourly and, per distinct tag, stats_hourly_tags.
CREATE TABLE stats_pending (
    hour                timestamptz NOT NULL,
    provider            text        NOT NULL,
    source              text        NOT NULL,
    campaign            text        NOT NULL,
    tags                text[]      NOT NULL,
    queued              integer     NOT NULL,
    sent                integer     NOT NULL,
    delivered           integer     NOT NULL,
    deferred            integer     NOT NULL,
    bounced             integer     NOT NULL,
    dropped             integer     NOT NULL,
    opened              integer     NOT NULL,
    clicked             integer     NOT NULL,
    complained          integer     NOT NULL,
    unsubscribed        integer     NOT NULL,
    resubscribed        integer     NOT NULL,
    unknown             integer     NOT NULL,
    hard_bounced        integer     NOT NULL,
    soft_bounced        integer     NOT NULL,
    machine_opened      integer     NOT NULL,
    unique_opened       integer     NOT NULL,
    unique_human_opened integer     NOT NULL,
    unique_clicked      integer     NOT NULL
);

-- Fold what the old pending tables hold into the rollups, then drop them. The lock keeps
-- a compactor of the previous release from folding the same rows meanwhile.
LOCK TABLE stats_hourly_pending, stats_hourly_tags_pending IN ACCESS EXCLUSIVE MODE;
DO $fold$
DECLARE
    counters text;
    sums text;
    adds text;
BEGIN
    SELECT string_agg(format('%I', column_name), ', ' ORDER BY ordinal_position),
           string_agg(format('sum(%I)', column_name), ', ' ORDER BY ordinal_position),
           string_agg(format('%1$I = s.%1$I + excluded.%1$I', column_name), ', '
                      ORDER BY ordinal_position)
    INTO counters, sums, adds
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'stats_hourly'
      AND data_type = 'bigint';
    EXECUTE format(
        'INSERT INTO stats_hourly AS s (hour, provider, source, campaign, %s) '
        'SELECT hour, provider, source, campaign, %s FROM stats_hourly_pending '
        'GROUP BY 1, 2, 3, 4 ON CONFLICT (hour, provider, source, campaign) DO UPDATE SET %s',
        counters, sums, adds);
    EXECUTE format(
        'INSERT INTO stats_hourly_tags AS s (hour, tag, provider, source, %s) '
        'SELECT hour, tag, provider, source, %s FROM stats_hourly_tags_pending '
        'GROUP BY 1, 2, 3, 4 ON CONFLICT (hour, tag, provider, source) DO UPDATE SET %s',
        counters, sums, adds);
END;
$fold$;
DROP TABLE stats_hourly_pending, stats_hourly_tags_pending;

-- The trigger of 0005 with the first engagements claimed per key and the shapes appended
-- as they are; the late-day marks are unchanged.
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
        unsubscribed, resubscribed, unknown, hard_bounced, soft_bounced, machine_opened,
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
