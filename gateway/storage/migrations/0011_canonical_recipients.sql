-- Recipients stored before canonical addresses (handlers/addresses.py) keep the ESP's own
-- spelling: a display name (`Jane <jane@example.org>`), a comment, surrounding blanks or an
-- upper-case domain. Per-address reads and the suppression list look addresses up in their
-- canonical form, so those rows were invisible to them. This rewrites every table that keys
-- on a recipient to the canonical form:
--
--   events.recipient            the addr-spec: display name and comments dropped, the domain
--                               lower-cased, the local part kept as written
--   first_engagements           keyed by a digest of the lower-cased recipient: the bits of
--                               an old key move to the canonical key (OR-ed together)
--   recipient_activity          keyed by the lower-cased recipient: merged with LEAST /
--                               GREATEST, as the activity folder merges
--   suppressions                keyed by address_key: where two entries become one address,
--                               the one in force wins, then the stronger reason
--                               (hookline_suppression_rank, as gateway/delivery/processors/
--                               suppressions.py ranks them), then the earliest
--   soft_bounces                keyed by (address_key, dedup_key): duplicates dropped
--
-- Domains that are not ASCII need IDNA (UTS #46), which SQL cannot do reasonably: those rows
-- are left as they are (canonical_address rewrites new events of those addresses).
--
-- One statement per table rather than batches: a migration runs in one transaction (batches
-- committed apart are not possible here), and every statement only writes the rows that are
-- not canonical, which a regular expression picks out. The events table is read once, in a
-- sequential scan; UPDATE and DELETE take row locks only, so ingest keeps inserting
-- meanwhile (new rows are canonical already and are never touched), and nothing here takes a
-- lock that blocks reads.

-- The canonical addr-spec of an ASCII-domain address, as handlers.addresses.canonical_address
-- spells it; NULL when the domain is not ASCII (left alone). Dropped at the end.
CREATE FUNCTION hookline_0011_canonical(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    WITH spec AS (
        SELECT btrim(CASE
                   -- a display name: the address is inside the angle brackets
                   WHEN t ~ '<[^<>]*@[^<>]*>' THEN substring(t FROM '<([^<>]*@[^<>]*)>')
                   -- comments around the address
                   WHEN t ~ '\(' THEN regexp_replace(t, '\([^()]*\)', '', 'g')
                   ELSE t
               END, E' \t\r\n') AS s
        FROM (SELECT btrim(value, E' \t\r\n') AS t) AS v
    ), parts AS (
        SELECT s, regexp_match(s, '^(.+)@([^@]+)$') AS m FROM spec
    )
    SELECT CASE
        WHEN m IS NULL THEN s
        WHEN octet_length(m[2]) <> char_length(m[2]) THEN NULL
        ELSE m[1] || '@' || lower(rtrim(btrim(m[2], E' \t\r\n'), '.'))
    END
    FROM parts
$$;

-- Not canonical: what handlers/addresses.py recognises as canonical (_CANONICAL), negated.
CREATE FUNCTION hookline_0011_rewrite(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN value ~ '^[^\s<>()",@]+@[a-z0-9]([a-z0-9.-]*[a-z0-9])?$' THEN NULL
        ELSE nullif(hookline_0011_canonical(value), value)
    END
$$;

-- events: one scan picks the rows to rewrite (with the old spelling, for the engagement keys)
CREATE TEMP TABLE hookline_0011_events ON COMMIT DROP AS
SELECT received_at, id, provider, message_id, event_type, recipient AS old_recipient,
       hookline_0011_rewrite(recipient) AS new_recipient
FROM events
WHERE recipient IS NOT NULL AND hookline_0011_rewrite(recipient) IS NOT NULL;

UPDATE events AS e
SET recipient = r.new_recipient
FROM hookline_0011_events AS r
WHERE e.received_at = r.received_at AND e.id = r.id;

-- first engagements: the trigger's key (0008) of the old and of the new spelling
WITH keys AS (
    SELECT DISTINCT
           decode(md5(provider || E'\x1f' || message_id || E'\x1f' || lower(old_recipient)),
                  'hex') AS old_key,
           decode(md5(provider || E'\x1f' || message_id || E'\x1f' || lower(new_recipient)),
                  'hex') AS new_key
    FROM hookline_0011_events
    WHERE message_id IS NOT NULL AND event_type IN ('opened', 'clicked')
), moved AS (
    DELETE FROM first_engagements AS f
    USING keys AS k
    WHERE f.key = k.old_key AND k.old_key <> k.new_key
    RETURNING k.new_key, f.kinds, f.received_at
)
INSERT INTO first_engagements AS f (key, kinds, added, received_at)
SELECT new_key, bit_or(kinds), 0, min(received_at) FROM moved GROUP BY new_key
ON CONFLICT (key) DO UPDATE
SET kinds = f.kinds | EXCLUDED.kinds, received_at = LEAST(f.received_at, EXCLUDED.received_at);

-- recipient activity (address = the lower-cased recipient)
WITH moved AS (
    DELETE FROM recipient_activity AS a
    WHERE hookline_0011_rewrite(a.address) IS NOT NULL
    RETURNING lower(hookline_0011_rewrite(a.address)) AS address,
              a.first_delivered_on, a.last_delivered_on, a.last_engaged_on
)
INSERT INTO recipient_activity AS a
    (address, first_delivered_on, last_delivered_on, last_engaged_on)
SELECT address, min(first_delivered_on), max(last_delivered_on), max(last_engaged_on)
FROM moved GROUP BY address
ON CONFLICT (address) DO UPDATE SET
    first_delivered_on = LEAST(a.first_delivered_on, EXCLUDED.first_delivered_on),
    last_delivered_on = GREATEST(a.last_delivered_on, EXCLUDED.last_delivered_on),
    last_engaged_on = GREATEST(a.last_engaged_on, EXCLUDED.last_engaged_on);

-- suppressions: take out the entries to rewrite and those already under their new key, then
-- put back the winner of each key
CREATE TEMP TABLE hookline_0011_suppressions (LIKE suppressions) ON COMMIT DROP;

WITH moved AS (
    DELETE FROM suppressions AS s
    WHERE hookline_0011_canonical(s.address) IS NOT NULL
      AND (s.address_key <> lower(hookline_0011_canonical(s.address))
           OR s.address <> hookline_0011_canonical(s.address))
    RETURNING s.*
)
INSERT INTO hookline_0011_suppressions
    (address_key, address, reason, dedup_key, provider, occurred_at, created_at, expires_at,
     note)
SELECT lower(hookline_0011_canonical(address)) AS address_key,
       hookline_0011_canonical(address) AS address,
       reason, dedup_key, provider, occurred_at, created_at, expires_at, note
FROM moved;

WITH joined AS (
    DELETE FROM suppressions AS s
    USING (SELECT DISTINCT address_key FROM hookline_0011_suppressions) AS k
    WHERE s.address_key = k.address_key
    RETURNING s.*
)
INSERT INTO hookline_0011_suppressions
    (address_key, address, reason, dedup_key, provider, occurred_at, created_at, expires_at,
     note)
SELECT address_key, address, reason, dedup_key, provider, occurred_at, created_at,
       expires_at, note
FROM joined;

INSERT INTO suppressions
    (address_key, address, reason, dedup_key, provider, occurred_at, created_at, expires_at,
     note)
SELECT DISTINCT ON (address_key)
       address_key, address, reason, dedup_key, provider, occurred_at, created_at, expires_at,
       note
FROM hookline_0011_suppressions
ORDER BY address_key,
         (expires_at IS NULL OR expires_at > now()) DESC,
         hookline_suppression_rank(reason) DESC,
         coalesce(occurred_at, created_at),
         created_at;

-- soft bounces counted towards a quarantine
WITH moved AS (
    DELETE FROM soft_bounces AS b
    WHERE hookline_0011_rewrite(b.address_key) IS NOT NULL
    RETURNING lower(hookline_0011_rewrite(b.address_key)) AS address_key, b.dedup_key,
              b.occurred_at
)
INSERT INTO soft_bounces (address_key, dedup_key, occurred_at)
SELECT address_key, dedup_key, min(occurred_at) FROM moved GROUP BY address_key, dedup_key
ON CONFLICT DO NOTHING;

DROP FUNCTION hookline_0011_rewrite(text);
DROP FUNCTION hookline_0011_canonical(text);
