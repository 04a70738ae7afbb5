-- Lifecycle: won, out of scope (reason, re-check date), paused; re-entering a campaign (SQLite).

-- out_of_scope: why, and when the daemon returns the lead to nurture (NULL = never by itself).
ALTER TABLE leads ADD COLUMN scope_reason TEXT;
ALTER TABLE leads ADD COLUMN recheck_at INTEGER;
-- paused: the state `leads resume` returns the lead to.
ALTER TABLE leads ADD COLUMN paused_from TEXT;
-- The daemon's re-check looks only at out-of-scope leads with a date.
CREATE INDEX leads_recheck ON leads (recheck_at) WHERE state = 'out_of_scope' AND recheck_at IS NOT NULL;

-- A lead may go through a campaign again (a campaign's `then`, `leads recycle --campaign`):
-- the enrolment row is reused with the next `cycle` (round), and its deliveries carry it.
ALTER TABLE enrolments ADD COLUMN cycle INTEGER NOT NULL DEFAULT 0;
-- A finished enrolment whose lead went on into another campaign is `continued` (active |
-- completed | stopped | continued); the daemon looks for completed enrolments of campaigns
-- that name a `then`, by state and campaign.
CREATE INDEX enrolments_state_campaign ON enrolments (state, campaign);

-- (lead, campaign, cycle, step) is unique: no step twice within one round. SQLite cannot
-- change a table's UNIQUE constraint in place, so the table is rebuilt (nothing references
-- deliveries by foreign key).
CREATE TABLE deliveries_new (
    id            INTEGER PRIMARY KEY,
    lead_id       INTEGER NOT NULL REFERENCES leads (id),
    enrolment_id  INTEGER NOT NULL REFERENCES enrolments (id),
    campaign      TEXT    NOT NULL,
    step          INTEGER NOT NULL,
    template      TEXT    NOT NULL,
    state         TEXT    NOT NULL DEFAULT 'scheduled', -- scheduled | claimed | retry_wait | sent | failed | unknown | cancelled
    due_at        INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    claimed_by    TEXT,
    lease_until   INTEGER,
    message_id    TEXT,
    sent_at       INTEGER,
    last_error    TEXT,
    updated_at    INTEGER NOT NULL,
    cycle         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (lead_id, campaign, cycle, step)
);
INSERT INTO deliveries_new (id, lead_id, enrolment_id, campaign, step, template, state, due_at, attempts, claimed_by,
                            lease_until, message_id, sent_at, last_error, updated_at, cycle)
SELECT id, lead_id, enrolment_id, campaign, step, template, state, due_at, attempts, claimed_by,
       lease_until, message_id, sent_at, last_error, updated_at, 0
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries (state, due_at);
CREATE INDEX deliveries_enrolment ON deliveries (enrolment_id, step);
CREATE INDEX deliveries_message_id ON deliveries (message_id) WHERE message_id IS NOT NULL;
