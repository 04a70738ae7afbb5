-- Campaign versions (PostgreSQL): every campaign definition the daemon applied, keyed by its
-- version (a hash of the normalised definition), with the definition itself as JSON, so a
-- later config can be compared with what the leads in flight follow (`rewarm plan`) and
-- re-planned by rule (docs/campaigns.md#edits). The current version of a campaign is its
-- row applied last.
CREATE TABLE campaign_versions (
    id          bigserial   PRIMARY KEY,
    campaign    text        NOT NULL,
    version     text        NOT NULL,
    definition  jsonb       NOT NULL,   -- the normalised campaign definition
    applied_at  timestamptz NOT NULL,
    UNIQUE (campaign, version)
);

-- The version an enrolment follows; NULL: its campaign's current version.
ALTER TABLE enrolments ADD COLUMN version text;

-- Waiting steps per campaign and step: what `plan` counts and a re-plan rewrites, without
-- reading the rest of the queue.
CREATE INDEX deliveries_campaign_waiting ON deliveries (campaign, id)
    WHERE state IN ('scheduled', 'retry_wait');
