-- The console's pages (SQLite): lead search, the sales queue, inbound review.

-- Prefix search on names and company, lower-cased like the query (`store/browse.rs`); the
-- email has its unique index already (addresses are stored lower-case).
CREATE INDEX leads_first_name ON leads (lower(first_name));
CREATE INDEX leads_last_name ON leads (lower(last_name));
CREATE INDEX leads_company ON leads (lower(company));
-- One owner's leads in a state (a sales user's search, the sales queue), by id.
CREATE INDEX leads_owner_state ON leads (lower(owner_email), state);
-- Leads by the segment that enrolled them.
CREATE INDEX enrolments_segment ON enrolments (segment, lead_id);

-- Leads by tag (lower-cased): SQLite cannot index the elements of a JSON array, so this
-- table mirrors `leads.tags`, kept by the triggers below whoever writes a lead (imports,
-- `db copy`, `leads forget`). It is derived: `db copy` does not move it.
CREATE TABLE lead_tags (
    tag      TEXT    NOT NULL,
    lead_id  INTEGER NOT NULL,
    PRIMARY KEY (tag, lead_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO lead_tags (tag, lead_id)
    SELECT lower(j.value), l.id FROM leads l, json_each(l.tags) j WHERE j.type = 'text';
CREATE TRIGGER lead_tags_insert AFTER INSERT ON leads WHEN NEW.tags <> '[]' BEGIN
    INSERT OR IGNORE INTO lead_tags (tag, lead_id)
        SELECT lower(j.value), NEW.id FROM json_each(NEW.tags) j WHERE j.type = 'text';
END;
CREATE TRIGGER lead_tags_update AFTER UPDATE OF tags ON leads WHEN NEW.tags IS NOT OLD.tags BEGIN
    DELETE FROM lead_tags WHERE lead_id = OLD.id
        AND tag IN (SELECT lower(j.value) FROM json_each(OLD.tags) j WHERE j.type = 'text');
    INSERT OR IGNORE INTO lead_tags (tag, lead_id)
        SELECT lower(j.value), NEW.id FROM json_each(NEW.tags) j WHERE j.type = 'text';
END;
CREATE TRIGGER lead_tags_delete AFTER DELETE ON leads WHEN OLD.tags <> '[]' BEGIN
    DELETE FROM lead_tags WHERE lead_id = OLD.id
        AND tag IN (SELECT lower(j.value) FROM json_each(OLD.tags) j WHERE j.type = 'text');
END;

-- Inbound review: an unmatched message a person dealt with ("this belongs to lead X" sets
-- its lead, matched_by 'review'; "ignore" leaves it unmatched), and who did, when.
ALTER TABLE inbound ADD COLUMN reviewed_at INTEGER;
ALTER TABLE inbound ADD COLUMN reviewed_by TEXT;
CREATE INDEX inbound_to_review ON inbound (id) WHERE lead_id IS NULL AND reviewed_at IS NULL;
