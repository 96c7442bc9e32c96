-- Recipient activity leaves the write path (issue #7's ingest budget: the per-batch
-- recipient upsert was a large share of the rollups trigger's time). The
-- worker's ActivityFolder (gateway/query/activity.py) now folds each UTC day of received
-- events into recipient_activity once the day has ended; reads merge the folded rows with
-- the events not folded yet. The hookline_rollups trigger of 0005 no longer upserts
-- recipients and marks the days that receive rows after they ended.

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
