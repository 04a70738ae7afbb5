-- Imports that stream (issue 12): a row imported again unchanged is recognised without
-- reading its lead. `import_hash` is a hash of the row an import last merged into the lead
-- (see src/store/import.rs); NULL: not known, the next import reads and merges the lead.
ALTER TABLE leads ADD COLUMN import_hash INTEGER;

-- Any other change to the lead's data makes the hash stale, whichever code path made it.
CREATE TRIGGER leads_import_stale AFTER UPDATE OF email, first_name, last_name, company, title,
    owner_email, owner_name, lost_reason, lost_at, timezone, tags, fields ON leads
    WHEN NEW.import_hash IS NOT NULL AND NEW.import_hash IS OLD.import_hash
BEGIN
    UPDATE leads SET import_hash = NULL WHERE id = NEW.id;
END;
