-- A million leads on one machine (PostgreSQL): claims in due order by index, enrolment that
-- does not re-examine leads no segment matches (`status`' "sent today" already has
-- `deliveries_sent_at`).

-- The claim reads pending deliveries in (`due_at`, `id`) order from this index and stops
-- after a batch: no claim sorts or filters every due row. Claimed, sent … rows leave it.
CREATE INDEX deliveries_pending ON deliveries (due_at, id) WHERE state IN ('scheduled', 'retry_wait');

-- A `new` lead that no segment matched is not examined again before this time (9999-12-31:
-- never by itself, only when its data or the segments change). NULL: examine it on the
-- daemon's next pass.
ALTER TABLE leads ADD COLUMN unmatched_until timestamptz;
CREATE INDEX leads_to_examine ON leads (id) WHERE state = 'new' AND unmatched_until IS NULL;
CREATE INDEX leads_unmatched ON leads (unmatched_until) WHERE state = 'new' AND unmatched_until IS NOT NULL;

-- Any change to what a segment reads (or to the lead's state) makes the lead worth
-- examining again, whichever code path made it.
CREATE FUNCTION rewarm_examine_again() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.unmatched_until IS NOT NULL AND NEW.unmatched_until IS NOT DISTINCT FROM OLD.unmatched_until
       AND (NEW.lost_reason, NEW.lost_at, NEW.created_at, NEW.timezone, NEW.tags, NEW.fields, NEW.owner_email, NEW.owner_name, NEW.state)
           IS DISTINCT FROM
           (OLD.lost_reason, OLD.lost_at, OLD.created_at, OLD.timezone, OLD.tags, OLD.fields, OLD.owner_email, OLD.owner_name, OLD.state)
    THEN
        NEW.unmatched_until := NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER leads_examine_again BEFORE UPDATE ON leads
    FOR EACH ROW WHEN (OLD.unmatched_until IS NOT NULL) EXECUTE FUNCTION rewarm_examine_again();
