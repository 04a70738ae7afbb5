-- Lifecycle: won, out of scope (reason, re-check date), paused; re-entering a campaign (PostgreSQL).

-- out_of_scope: why, and when the daemon returns the lead to nurture (NULL = never by itself).
-- paused: the state `leads resume` returns the lead to.
ALTER TABLE leads ADD COLUMN scope_reason text,
                  ADD COLUMN recheck_at   timestamptz,
                  ADD COLUMN paused_from  text;
-- The daemon's re-check looks only at out-of-scope leads with a date.
CREATE INDEX leads_recheck ON leads (recheck_at) WHERE state = 'out_of_scope' AND recheck_at IS NOT NULL;

-- A lead may go through a campaign again (a campaign's `then`, `leads recycle --campaign`):
-- the enrolment row is reused with the next `cycle` (round), and its deliveries carry it.
ALTER TABLE enrolments ADD COLUMN cycle bigint NOT NULL DEFAULT 0;
-- A finished enrolment whose lead went on into another campaign is `continued` (active |
-- completed | stopped | continued); the daemon looks for completed enrolments of campaigns
-- that name a `then`, by state and campaign.
CREATE INDEX enrolments_state_campaign ON enrolments (state, campaign);
ALTER TABLE deliveries ADD COLUMN cycle bigint NOT NULL DEFAULT 0;
-- (lead, campaign, cycle, step) is unique: no step twice within one round.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_lead_id_campaign_step_key;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_lead_campaign_cycle_step UNIQUE (lead_id, campaign, cycle, step);
