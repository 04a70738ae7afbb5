-- The console's pages (PostgreSQL): lead search, the sales queue, inbound review.

-- Prefix search (`store/browse.rs`) compares bytes (COLLATE "C"), whatever the database's
-- collation, so a prefix is a range of these indexes.
CREATE INDEX leads_email_prefix ON leads ((email COLLATE "C"));
CREATE INDEX leads_first_name ON leads ((lower(first_name) COLLATE "C"));
CREATE INDEX leads_last_name ON leads ((lower(last_name) COLLATE "C"));
CREATE INDEX leads_company ON leads ((lower(company) COLLATE "C"));
-- One owner's leads, by id (a sales user's search), and in a state (the sales queue).
CREATE INDEX leads_owner_id ON leads (lower(owner_email), id);
CREATE INDEX leads_owner_state ON leads (lower(owner_email), state, id);
-- Leads by the segment that enrolled them.
CREATE INDEX enrolments_segment ON enrolments (segment, lead_id);
-- Leads by tag, lower-cased (tags are compared case-insensitively everywhere).
CREATE INDEX leads_tags ON leads USING gin ((lower(tags::text)::jsonb) jsonb_path_ops);

-- Inbound review: an unmatched message a person dealt with ("this belongs to lead X" sets
-- its lead, matched_by 'review'; "ignore" leaves it unmatched), and who did, when.
ALTER TABLE inbound ADD COLUMN reviewed_at timestamptz;
ALTER TABLE inbound ADD COLUMN reviewed_by text;
CREATE INDEX inbound_to_review ON inbound (id) WHERE lead_id IS NULL AND reviewed_at IS NULL;
