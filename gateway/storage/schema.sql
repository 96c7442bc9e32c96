-- The current schema: every table, index, function and trigger as the migrations in
-- gateway/storage/migrations/ leave a fresh database (pg_dump --schema-only).
-- Generated: do not edit. Regenerate with `make schema` (python -m gateway.storage.snapshot).

-- Name: hookline_ensure_event_partition(date); Type: FUNCTION

CREATE FUNCTION public.hookline_ensure_event_partition(day date) RETURNS text
    LANGUAGE plpgsql
    AS $$
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

-- Name: hookline_rollup_events(); Type: FUNCTION

CREATE FUNCTION public.hookline_rollup_events() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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
$$;

-- Name: hookline_suppression_rank(text); Type: FUNCTION

CREATE FUNCTION public.hookline_suppression_rank(reason text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE reason
        WHEN 'hard_bounce' THEN 5
        WHEN 'complaint' THEN 4
        WHEN 'manual' THEN 3
        WHEN 'unsubscribe' THEN 2
        WHEN 'soft_bounce' THEN 1
        ELSE 0
    END
$$;

-- Name: control_messages; Type: TABLE

CREATE TABLE public.control_messages (
    id bigint NOT NULL,
    provider text NOT NULL,
    source text NOT NULL,
    kind text NOT NULL,
    detail jsonb DEFAULT '{}'::jsonb NOT NULL,
    confirm_url text,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    confirmed_at timestamp with time zone,
    confirm_error text
);

-- Name: control_messages_id_seq; Type: SEQUENCE

ALTER TABLE public.control_messages ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.control_messages_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

-- Name: dlq; Type: TABLE

CREATE TABLE public.dlq (
    id bigint NOT NULL,
    sink text NOT NULL,
    dedup_key text NOT NULL,
    event_type text NOT NULL,
    payload jsonb NOT NULL,
    trace_context text,
    enqueued_at timestamp with time zone NOT NULL,
    dead_at timestamp with time zone NOT NULL,
    reason text NOT NULL,
    attempts integer NOT NULL,
    replays integer DEFAULT 0 NOT NULL,
    last_status integer,
    last_error text NOT NULL,
    history jsonb DEFAULT '[]'::jsonb NOT NULL,
    CONSTRAINT dlq_reason_check CHECK ((reason = ANY (ARRAY['exhausted'::text, 'permanent'::text])))
);

-- Name: dlq_id_seq; Type: SEQUENCE

ALTER TABLE public.dlq ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.dlq_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

-- Name: dlq_replay_jobs; Type: TABLE

CREATE TABLE public.dlq_replay_jobs (
    job_id text NOT NULL,
    sink text NOT NULL,
    since timestamp with time zone,
    until timestamp with time zone,
    matched integer NOT NULL,
    replayed integer DEFAULT 0 NOT NULL,
    status text DEFAULT 'running'::text NOT NULL,
    error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT dlq_replay_jobs_status_check CHECK ((status = ANY (ARRAY['running'::text, 'done'::text, 'failed'::text])))
);

-- Name: event_keys; Type: TABLE

CREATE TABLE public.event_keys (
    dedup_key text NOT NULL,
    received_at timestamp with time zone NOT NULL
);

-- Name: events; Type: TABLE

CREATE TABLE public.events (
    id bigint NOT NULL,
    dedup_key text NOT NULL,
    provider text NOT NULL,
    source text NOT NULL,
    event_type text NOT NULL,
    esp_event text,
    occurred_at timestamp with time zone NOT NULL,
    received_at timestamp with time zone NOT NULL,
    recipient text,
    message_id text,
    provider_event_id text,
    bounce_class text,
    reason text,
    smtp_status text,
    diagnostic text,
    url text,
    user_agent text,
    ip text,
    machine_open boolean DEFAULT false NOT NULL,
    campaign text,
    tags text[] DEFAULT '{}'::text[] NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    raw jsonb,
    time_source text DEFAULT 'event'::text NOT NULL
)
PARTITION BY RANGE (received_at);

-- Name: events_default; Type: TABLE

CREATE TABLE public.events_default (
    id bigint NOT NULL,
    dedup_key text NOT NULL,
    provider text NOT NULL,
    source text NOT NULL,
    event_type text NOT NULL,
    esp_event text,
    occurred_at timestamp with time zone NOT NULL,
    received_at timestamp with time zone NOT NULL,
    recipient text,
    message_id text,
    provider_event_id text,
    bounce_class text,
    reason text,
    smtp_status text,
    diagnostic text,
    url text,
    user_agent text,
    ip text,
    machine_open boolean DEFAULT false NOT NULL,
    campaign text,
    tags text[] DEFAULT '{}'::text[] NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    raw jsonb,
    time_source text DEFAULT 'event'::text NOT NULL
);

-- Name: events_id_seq; Type: SEQUENCE

ALTER TABLE public.events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

-- Name: first_engagements; Type: TABLE

CREATE TABLE public.first_engagements (
    key bytea NOT NULL,
    kinds smallint NOT NULL,
    added smallint NOT NULL,
    received_at timestamp with time zone NOT NULL
);

-- Name: outbox; Type: TABLE

CREATE TABLE public.outbox (
    id bigint NOT NULL,
    processor text NOT NULL,
    sink text DEFAULT ''::text NOT NULL,
    dedup_key text NOT NULL,
    event_type text NOT NULL,
    payload jsonb NOT NULL,
    trace_context text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    due_at timestamp with time zone DEFAULT now() NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    replays integer DEFAULT 0 NOT NULL,
    last_error text,
    history jsonb DEFAULT '[]'::jsonb NOT NULL,
    claimed_until timestamp with time zone,
    claim_token uuid,
    CONSTRAINT outbox_processor_check CHECK ((processor = ANY (ARRAY['suppressions'::text, 'sink'::text])))
);

-- Name: outbox_id_seq; Type: SEQUENCE

ALTER TABLE public.outbox ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.outbox_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

-- Name: quarantine; Type: TABLE

CREATE TABLE public.quarantine (
    id bigint NOT NULL,
    provider text NOT NULL,
    source text NOT NULL,
    received_at timestamp with time zone NOT NULL,
    quarantined_at timestamp with time zone DEFAULT now() NOT NULL,
    stage text NOT NULL,
    reason text NOT NULL,
    field text,
    error text NOT NULL,
    dedup_key text,
    raw jsonb,
    event bytea,
    replayed_at timestamp with time zone,
    replay_error text,
    CONSTRAINT quarantine_stage_check CHECK ((stage = ANY (ARRAY['parse'::text, 'store'::text])))
);

-- Name: quarantine_id_seq; Type: SEQUENCE

ALTER TABLE public.quarantine ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.quarantine_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

-- Name: recipient_activity; Type: TABLE

CREATE TABLE public.recipient_activity (
    address text NOT NULL,
    first_delivered_on date,
    last_delivered_on date,
    last_engaged_on date
)
WITH (fillfactor='80');

-- Name: recipient_activity_fold; Type: TABLE

CREATE TABLE public.recipient_activity_fold (
    singleton boolean DEFAULT true NOT NULL,
    open_from date NOT NULL,
    CONSTRAINT recipient_activity_fold_singleton_check CHECK (singleton)
);

-- Name: recipient_activity_late; Type: TABLE

CREATE TABLE public.recipient_activity_late (
    day date NOT NULL
);

-- Name: schema_migrations; Type: TABLE

CREATE TABLE public.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

-- Name: soft_bounces; Type: TABLE

CREATE TABLE public.soft_bounces (
    address_key text NOT NULL,
    dedup_key text NOT NULL,
    occurred_at timestamp with time zone NOT NULL
);

-- Name: stats_hourly; Type: TABLE

CREATE TABLE public.stats_hourly (
    hour timestamp with time zone NOT NULL,
    provider text NOT NULL,
    source text NOT NULL,
    campaign text NOT NULL,
    queued bigint DEFAULT 0 NOT NULL,
    sent bigint DEFAULT 0 NOT NULL,
    delivered bigint DEFAULT 0 NOT NULL,
    deferred bigint DEFAULT 0 NOT NULL,
    bounced bigint DEFAULT 0 NOT NULL,
    dropped bigint DEFAULT 0 NOT NULL,
    opened bigint DEFAULT 0 NOT NULL,
    clicked bigint DEFAULT 0 NOT NULL,
    complained bigint DEFAULT 0 NOT NULL,
    unsubscribed bigint DEFAULT 0 NOT NULL,
    resubscribed bigint DEFAULT 0 NOT NULL,
    unknown bigint DEFAULT 0 NOT NULL,
    hard_bounced bigint DEFAULT 0 NOT NULL,
    soft_bounced bigint DEFAULT 0 NOT NULL,
    machine_opened bigint DEFAULT 0 NOT NULL,
    unique_opened bigint DEFAULT 0 NOT NULL,
    unique_human_opened bigint DEFAULT 0 NOT NULL,
    unique_clicked bigint DEFAULT 0 NOT NULL,
    auto_replied bigint DEFAULT 0 NOT NULL
);

-- Name: stats_hourly_tags; Type: TABLE

CREATE TABLE public.stats_hourly_tags (
    hour timestamp with time zone NOT NULL,
    provider text NOT NULL,
    source text NOT NULL,
    queued bigint DEFAULT 0 NOT NULL,
    sent bigint DEFAULT 0 NOT NULL,
    delivered bigint DEFAULT 0 NOT NULL,
    deferred bigint DEFAULT 0 NOT NULL,
    bounced bigint DEFAULT 0 NOT NULL,
    dropped bigint DEFAULT 0 NOT NULL,
    opened bigint DEFAULT 0 NOT NULL,
    clicked bigint DEFAULT 0 NOT NULL,
    complained bigint DEFAULT 0 NOT NULL,
    unsubscribed bigint DEFAULT 0 NOT NULL,
    resubscribed bigint DEFAULT 0 NOT NULL,
    unknown bigint DEFAULT 0 NOT NULL,
    hard_bounced bigint DEFAULT 0 NOT NULL,
    soft_bounced bigint DEFAULT 0 NOT NULL,
    machine_opened bigint DEFAULT 0 NOT NULL,
    unique_opened bigint DEFAULT 0 NOT NULL,
    unique_human_opened bigint DEFAULT 0 NOT NULL,
    unique_clicked bigint DEFAULT 0 NOT NULL,
    tag text NOT NULL,
    auto_replied bigint DEFAULT 0 NOT NULL
);

-- Name: stats_pending; Type: TABLE

CREATE TABLE public.stats_pending (
    hour timestamp with time zone NOT NULL,
    provider text NOT NULL,
    source text NOT NULL,
    campaign text NOT NULL,
    tags text[] NOT NULL,
    queued integer NOT NULL,
    sent integer NOT NULL,
    delivered integer NOT NULL,
    deferred integer NOT NULL,
    bounced integer NOT NULL,
    dropped integer NOT NULL,
    opened integer NOT NULL,
    clicked integer NOT NULL,
    complained integer NOT NULL,
    unsubscribed integer NOT NULL,
    resubscribed integer NOT NULL,
    unknown integer NOT NULL,
    hard_bounced integer NOT NULL,
    soft_bounced integer NOT NULL,
    machine_opened integer NOT NULL,
    unique_opened integer NOT NULL,
    unique_human_opened integer NOT NULL,
    unique_clicked integer NOT NULL,
    auto_replied integer DEFAULT 0 NOT NULL
);

-- Name: suppressions; Type: TABLE

CREATE TABLE public.suppressions (
    address_key text NOT NULL,
    address text NOT NULL,
    reason text NOT NULL,
    dedup_key text,
    provider text,
    occurred_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone,
    note text,
    CONSTRAINT suppressions_reason_check CHECK ((reason = ANY (ARRAY['hard_bounce'::text, 'complaint'::text, 'unsubscribe'::text, 'soft_bounce'::text, 'manual'::text])))
);

-- Name: webhook_nonces; Type: TABLE

CREATE TABLE public.webhook_nonces (
    provider text NOT NULL,
    source text NOT NULL,
    nonce text NOT NULL,
    digest text NOT NULL,
    seen_at timestamp with time zone DEFAULT now() NOT NULL
);

-- Name: events_default; Type: TABLE ATTACH

ALTER TABLE ONLY public.events ATTACH PARTITION public.events_default DEFAULT;

-- Name: control_messages control_messages_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.control_messages
    ADD CONSTRAINT control_messages_pkey PRIMARY KEY (id);

-- Name: dlq dlq_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.dlq
    ADD CONSTRAINT dlq_pkey PRIMARY KEY (id);

-- Name: dlq_replay_jobs dlq_replay_jobs_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.dlq_replay_jobs
    ADD CONSTRAINT dlq_replay_jobs_pkey PRIMARY KEY (job_id);

-- Name: event_keys event_keys_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.event_keys
    ADD CONSTRAINT event_keys_pkey PRIMARY KEY (dedup_key);

-- Name: events events_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (received_at, id);

-- Name: events_default events_default_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.events_default
    ADD CONSTRAINT events_default_pkey PRIMARY KEY (received_at, id);

-- Name: first_engagements first_engagements_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.first_engagements
    ADD CONSTRAINT first_engagements_pkey PRIMARY KEY (key);

-- Name: outbox outbox_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.outbox
    ADD CONSTRAINT outbox_pkey PRIMARY KEY (id);

-- Name: quarantine quarantine_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.quarantine
    ADD CONSTRAINT quarantine_pkey PRIMARY KEY (id);

-- Name: recipient_activity_fold recipient_activity_fold_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.recipient_activity_fold
    ADD CONSTRAINT recipient_activity_fold_pkey PRIMARY KEY (singleton);

-- Name: recipient_activity recipient_activity_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.recipient_activity
    ADD CONSTRAINT recipient_activity_pkey PRIMARY KEY (address);

-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

-- Name: soft_bounces soft_bounces_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.soft_bounces
    ADD CONSTRAINT soft_bounces_pkey PRIMARY KEY (address_key, dedup_key);

-- Name: stats_hourly stats_hourly_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.stats_hourly
    ADD CONSTRAINT stats_hourly_pkey PRIMARY KEY (hour, provider, source, campaign);

-- Name: stats_hourly_tags stats_hourly_tags_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.stats_hourly_tags
    ADD CONSTRAINT stats_hourly_tags_pkey PRIMARY KEY (hour, tag, provider, source);

-- Name: suppressions suppressions_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.suppressions
    ADD CONSTRAINT suppressions_pkey PRIMARY KEY (address_key);

-- Name: webhook_nonces webhook_nonces_pkey; Type: CONSTRAINT

ALTER TABLE ONLY public.webhook_nonces
    ADD CONSTRAINT webhook_nonces_pkey PRIMARY KEY (provider, source, nonce);

-- Name: dlq_dead_at; Type: INDEX

CREATE INDEX dlq_dead_at ON public.dlq USING btree (dead_at);

-- Name: dlq_sink_event; Type: INDEX

CREATE UNIQUE INDEX dlq_sink_event ON public.dlq USING btree (sink, dedup_key);

-- Name: dlq_sink_id; Type: INDEX

CREATE INDEX dlq_sink_id ON public.dlq USING btree (sink, id);

-- Name: event_keys_received_at; Type: INDEX

CREATE INDEX event_keys_received_at ON public.event_keys USING btree (received_at);

-- Name: events_campaign; Type: INDEX

CREATE INDEX events_campaign ON ONLY public.events USING btree (campaign, occurred_at, id) WHERE (campaign IS NOT NULL);

-- Name: events_default_campaign_occurred_at_id_idx1; Type: INDEX

CREATE INDEX events_default_campaign_occurred_at_id_idx1 ON public.events_default USING btree (campaign, occurred_at, id) WHERE (campaign IS NOT NULL);

-- Name: events_recipient; Type: INDEX

CREATE INDEX events_recipient ON ONLY public.events USING btree (lower(recipient), occurred_at, id);

-- Name: events_default_lower_occurred_at_id_idx; Type: INDEX

CREATE INDEX events_default_lower_occurred_at_id_idx ON public.events_default USING btree (lower(recipient), occurred_at, id);

-- Name: events_message_id; Type: INDEX

CREATE INDEX events_message_id ON ONLY public.events USING btree (message_id, occurred_at, id);

-- Name: events_default_message_id_occurred_at_id_idx; Type: INDEX

CREATE INDEX events_default_message_id_occurred_at_id_idx ON public.events_default USING btree (message_id, occurred_at, id);

-- Name: events_metadata; Type: INDEX

CREATE INDEX events_metadata ON ONLY public.events USING gin (metadata jsonb_path_ops);

-- Name: events_default_metadata_idx; Type: INDEX

CREATE INDEX events_default_metadata_idx ON public.events_default USING gin (metadata jsonb_path_ops);

-- Name: events_occurred_at_id; Type: INDEX

CREATE INDEX events_occurred_at_id ON ONLY public.events USING btree (occurred_at, id);

-- Name: events_default_occurred_at_id_idx; Type: INDEX

CREATE INDEX events_default_occurred_at_id_idx ON public.events_default USING btree (occurred_at, id);

-- Name: events_tags; Type: INDEX

CREATE INDEX events_tags ON ONLY public.events USING gin (tags);

-- Name: events_default_tags_idx; Type: INDEX

CREATE INDEX events_default_tags_idx ON public.events_default USING gin (tags);

-- Name: first_engagements_received_at; Type: INDEX

CREATE INDEX first_engagements_received_at ON public.first_engagements USING brin (received_at) WITH (autosummarize='on');

-- Name: outbox_due_at; Type: INDEX

CREATE INDEX outbox_due_at ON public.outbox USING btree (due_at);

-- Name: outbox_work; Type: INDEX

CREATE UNIQUE INDEX outbox_work ON public.outbox USING btree (processor, sink, dedup_key);

-- Name: quarantine_provider_id; Type: INDEX

CREATE INDEX quarantine_provider_id ON public.quarantine USING btree (provider, id);

-- Name: quarantine_store_pending; Type: INDEX

CREATE UNIQUE INDEX quarantine_store_pending ON public.quarantine USING btree (dedup_key) WHERE ((stage = 'store'::text) AND (replayed_at IS NULL));

-- Name: soft_bounces_occurred_at; Type: INDEX

CREATE INDEX soft_bounces_occurred_at ON public.soft_bounces USING btree (occurred_at);

-- Name: suppressions_reason; Type: INDEX

CREATE INDEX suppressions_reason ON public.suppressions USING btree (reason, address_key);

-- Name: webhook_nonces_seen_at; Type: INDEX

CREATE INDEX webhook_nonces_seen_at ON public.webhook_nonces USING btree (seen_at);

-- Name: events_default_campaign_occurred_at_id_idx1; Type: INDEX ATTACH

ALTER INDEX public.events_campaign ATTACH PARTITION public.events_default_campaign_occurred_at_id_idx1;

-- Name: events_default_lower_occurred_at_id_idx; Type: INDEX ATTACH

ALTER INDEX public.events_recipient ATTACH PARTITION public.events_default_lower_occurred_at_id_idx;

-- Name: events_default_message_id_occurred_at_id_idx; Type: INDEX ATTACH

ALTER INDEX public.events_message_id ATTACH PARTITION public.events_default_message_id_occurred_at_id_idx;

-- Name: events_default_metadata_idx; Type: INDEX ATTACH

ALTER INDEX public.events_metadata ATTACH PARTITION public.events_default_metadata_idx;

-- Name: events_default_occurred_at_id_idx; Type: INDEX ATTACH

ALTER INDEX public.events_occurred_at_id ATTACH PARTITION public.events_default_occurred_at_id_idx;

-- Name: events_default_pkey; Type: INDEX ATTACH

ALTER INDEX public.events_pkey ATTACH PARTITION public.events_default_pkey;

-- Name: events_default_tags_idx; Type: INDEX ATTACH

ALTER INDEX public.events_tags ATTACH PARTITION public.events_default_tags_idx;

-- Name: events hookline_rollups; Type: TRIGGER

CREATE TRIGGER hookline_rollups AFTER INSERT ON public.events REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION public.hookline_rollup_events();
