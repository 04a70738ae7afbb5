-- Faults: a delivery is at risk only once its own SMTP transaction (or API call) started.
-- `started_at` is set, in a small wave just before the send, on rows already claimed; a
-- claim whose lease expires with `started_at` unset was never sent and goes back to due,
-- one with it set is written off (`unknown`).
ALTER TABLE deliveries ADD COLUMN started_at timestamptz;

-- Lease-expiry repair: only claimed rows, by lease end.
CREATE INDEX IF NOT EXISTS deliveries_lease ON deliveries (lease_until) WHERE state = 'claimed';
-- Stalled-enrolment repair starts from the rows written off (the only outcome recorded
-- without the next step) and checks each enrolment for a pending row.
CREATE INDEX IF NOT EXISTS deliveries_unknown ON deliveries (enrolment_id) WHERE state = 'unknown';
CREATE INDEX IF NOT EXISTS deliveries_pending_enrolment ON deliveries (enrolment_id) WHERE state IN ('scheduled', 'claimed', 'retry_wait', 'held');
