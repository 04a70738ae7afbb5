-- Stale hand-offs, reassignments and the weekly digest (SQLite).

-- Events by kind and time (PostgreSQL has had it since 0001; SQLite gets it here): the digest's week ([start, end) per kind: re-warms, feedback,
-- suppressions) is a range scan, not a pass over the whole timeline.
CREATE INDEX IF NOT EXISTS events_kind_at ON events (kind, at);

-- Leads by owner (compared lower-cased): `leads reassign` and the digest's leads without an
-- owner (NULL) read this instead of every lead.
CREATE INDEX IF NOT EXISTS leads_owner ON leads (lower(owner_email));
