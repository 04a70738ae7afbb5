-- Fewer index entries written per email sent (PostgreSQL; issue 12). A send updates its
-- delivery twice (claimed, then sent) and inserts the next step; `state` is indexed, so
-- neither update is HOT and each writes a new entry into every index of `deliveries` whose
-- predicate the row meets (a full index always). Five indexes doubled others; dropping them
-- (as SQLite's migration 0020 did for three of them) made the record-a-wave statement of a
-- 10k pass 21.5–23.3 → 17.7–19.8 ms and a claim 30–31 → 21–24 ms on this machine.
--
-- `deliveries_campaign_state (campaign, state)`: pausing a campaign reads its waiting rows
-- from `deliveries_campaign_waiting` (the same `state IN ('scheduled', 'retry_wait')`),
-- resuming it its held rows from `deliveries_campaign_held`, which a send never touches.
DROP INDEX IF EXISTS deliveries_campaign_state;
CREATE INDEX IF NOT EXISTS deliveries_campaign_held ON deliveries (campaign) WHERE state = 'held';

-- `deliveries_pending_enrolment`: "does this enrolment have a pending row" reads the
-- enrolment's few rows from `deliveries_enrolment (enrolment_id, step)`.
DROP INDEX IF EXISTS deliveries_pending_enrolment;

-- `deliveries_lead (lead_id)`: the unique key `(lead_id, campaign, cycle, step)` starts with it.
DROP INDEX IF EXISTS deliveries_lead;

-- `deliveries_sent_at (sent_at)` held every row, unsent ones included; every query of sent
-- times asks for `state = 'sent'` (status, report, console), which a partial index serves
-- (SQLite's `deliveries_sent`).
DROP INDEX IF EXISTS deliveries_sent_at;
CREATE INDEX IF NOT EXISTS deliveries_sent ON deliveries (sent_at) WHERE state = 'sent';

-- `events_lead_kind (lead_id, kind, at)` doubled `events_lead (lead_id, id)`: a lead's events
-- of one kind are read from its few events.
DROP INDEX IF EXISTS events_lead_kind;
