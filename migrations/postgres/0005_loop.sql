-- Closing the loop (PostgreSQL): the report reads a lead's events of one kind in a time range,
-- and the cohort of enrolments made in a time range.
CREATE INDEX events_lead_kind ON events (lead_id, kind, at);
CREATE INDEX enrolments_enrolled ON enrolments (enrolled_at);
