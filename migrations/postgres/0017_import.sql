-- Imports that stream (issue 12): a row imported again unchanged is recognised without
-- reading its lead. `import_hash` is a hash of the row an import last merged into the lead
-- (see src/store/import.rs); NULL: not known, the next import reads and merges the lead.
ALTER TABLE leads ADD COLUMN import_hash bigint;

-- Any other change to the lead's data makes the hash stale, whichever code path made it.
CREATE FUNCTION rewarm_import_stale() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.import_hash IS NOT DISTINCT FROM OLD.import_hash
       AND (NEW.email, NEW.first_name, NEW.last_name, NEW.company, NEW.title, NEW.owner_email, NEW.owner_name,
            NEW.lost_reason, NEW.lost_at, NEW.timezone, NEW.tags, NEW.fields)
           IS DISTINCT FROM
           (OLD.email, OLD.first_name, OLD.last_name, OLD.company, OLD.title, OLD.owner_email, OLD.owner_name,
            OLD.lost_reason, OLD.lost_at, OLD.timezone, OLD.tags, OLD.fields)
    THEN
        NEW.import_hash := NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER leads_import_stale BEFORE UPDATE ON leads
    FOR EACH ROW WHEN (OLD.import_hash IS NOT NULL) EXECUTE FUNCTION rewarm_import_stale();
