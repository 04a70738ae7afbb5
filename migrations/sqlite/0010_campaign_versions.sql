-- Campaign versions (SQLite): every campaign definition the daemon applied, keyed by its
-- version (a hash of the normalised definition), with the definition itself as JSON, so a
-- later config can be compared with what the leads in flight follow (`rewarm plan`) and
-- re-planned by rule (docs/campaigns.md#edits). The current version of a campaign is its
-- row applied last.
CREATE TABLE campaign_versions (
    id          INTEGER PRIMARY KEY,
    campaign    TEXT    NOT NULL,
    version     TEXT    NOT NULL,
    definition  TEXT    NOT NULL,   -- JSON: the normalised campaign definition
    applied_at  INTEGER NOT NULL,
    UNIQUE (campaign, version)
);

-- The version an enrolment follows; NULL: its campaign's current version.
ALTER TABLE enrolments ADD COLUMN version TEXT;

-- Waiting steps per campaign and step: what `plan` counts and a re-plan rewrites, without
-- reading the rest of the queue.
CREATE INDEX deliveries_campaign_waiting ON deliveries (campaign, id)
    WHERE state IN ('scheduled', 'retry_wait');
