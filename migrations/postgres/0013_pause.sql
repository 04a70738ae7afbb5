-- Pause (PostgreSQL): campaigns held by `campaigns pause`, and deliveries held while their
-- lead or their campaign is paused.

-- One row per paused campaign (by name); `campaigns resume` deletes it.
CREATE TABLE paused_campaigns (
    name       text        PRIMARY KEY,
    paused_at  timestamptz NOT NULL,
    paused_by  text        NOT NULL
);

-- A held delivery has state 'held' and remembers the state it was held in ('scheduled' or
-- 'retry_wait'). Claims read only 'scheduled' / 'retry_wait' rows (deliveries_due), so
-- paused work is never even looked at by a claim.
ALTER TABLE deliveries ADD COLUMN held_from text;

-- A campaign's waiting rows, for pause, resume and the per-pass hold of new ones.
CREATE INDEX deliveries_campaign_state ON deliveries (campaign, state);

-- Leads paused before this migration: their waiting rows become held.
UPDATE deliveries SET held_from = state, state = 'held'
 WHERE state IN ('scheduled', 'retry_wait') AND lead_id IN (SELECT id FROM leads WHERE state = 'paused');
