-- Fewer index entries written at random places per email sent (SQLite; issue 12). At a
-- million due rows every B-tree a send dirties at a random place is a page read and a page
-- written to the WAL per message; a send pass dirtied ~15 such places per email and slowed
-- down with the backlog's size. Three indexes made 7 of them and are served as well by
-- others:
--
-- `deliveries_campaign_state (campaign, state)` moved every row twice per send (claimed,
-- then sent), each move a delete and an insert at random places. Pausing a campaign reads
-- its waiting rows from `deliveries_campaign_waiting` (the same `state IN ('scheduled',
-- 'retry_wait')`), resuming it its held rows from `deliveries_campaign_held`, which a send
-- never touches.
DROP INDEX deliveries_campaign_state;
CREATE INDEX deliveries_campaign_held ON deliveries (campaign) WHERE state = 'held';

-- `deliveries_pending_enrolment` was rewritten at the claim and at the record: "does this
-- enrolment have a pending row" reads the enrolment's few rows from `deliveries_enrolment`.
DROP INDEX deliveries_pending_enrolment;

-- `events_lead_kind (lead_id, kind, at)` doubled `events_lead (lead_id, id)`: every lookup of
-- a lead's events of one kind reads that lead's few events from `events_lead`.
DROP INDEX events_lead_kind;
