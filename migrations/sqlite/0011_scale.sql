-- A million leads on one machine (SQLite): claims in due order by index, enrolment that
-- does not re-examine leads no segment matches, counts for `status` by index.

-- The claim reads pending deliveries in `due_at` order from this index and stops after a
-- batch: no claim sorts or filters every due row. Claimed, sent, failed … rows leave it.
CREATE INDEX deliveries_pending ON deliveries (due_at) WHERE state IN ('scheduled', 'retry_wait');

-- `status`' "sent today" is a range of this index, not a pass over every sent delivery.
CREATE INDEX deliveries_sent ON deliveries (sent_at) WHERE state = 'sent';

-- A `new` lead that no segment matched is not examined again before this time (integer
-- milliseconds; 253402214400000 = 9999-12-31: never by itself, only when its data or the
-- segments change). NULL: examine it on the daemon's next pass.
ALTER TABLE leads ADD COLUMN unmatched_until INTEGER;
CREATE INDEX leads_to_examine ON leads (id) WHERE state = 'new' AND unmatched_until IS NULL;
CREATE INDEX leads_unmatched ON leads (unmatched_until) WHERE state = 'new' AND unmatched_until IS NOT NULL;

-- Any change to what a segment reads (or to the lead's state) makes the lead worth
-- examining again, whichever code path made it.
CREATE TRIGGER leads_examine_again AFTER UPDATE OF lost_reason, lost_at, created_at, timezone, tags, fields,
    owner_email, owner_name, state ON leads
    WHEN NEW.unmatched_until IS NOT NULL AND OLD.unmatched_until IS NEW.unmatched_until
BEGIN
    UPDATE leads SET unmatched_until = NULL WHERE id = NEW.id;
END;
