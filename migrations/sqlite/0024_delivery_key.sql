-- One step once, keyed by enrolment instead of by lead (SQLite; issue 12).
--
-- `UNIQUE (lead_id, campaign, cycle, step)` put every next step a send pass schedules at its
-- lead's place in a B-tree with an entry per delivery: a random leaf, a page read and written
-- to the WAL per email, the last such write of a send pass at a million leads (a 1M pass on a
-- copy keyed by enrolment: 142–146 s against 155–176 s). An enrolment is one lead in one
-- campaign and carries its round (`cycle`), so the unique index `deliveries_enrolment
-- (enrolment_id, cycle, step)` says the same: no step twice within one round. Enrolments are
-- written in due order and a pass sends in due order, so a wave's next steps land on
-- neighbouring leaves. It replaces the index of that name on (enrolment_id, step).
--
-- A lead's deliveries are now found through its enrolments (`UNIQUE (lead_id, campaign)`):
-- `enrolment_id IN (SELECT id FROM enrolments WHERE lead_id = …)` (`of_leads!` in
-- src/store/shared.rs). Every delivery has an enrolment of the same lead.
--
-- SQLite cannot change a table's UNIQUE constraint in place, so the table is rebuilt with its
-- indexes and triggers (nothing references deliveries by foreign key). `legacy_alter_table`
-- keeps the rename from checking the triggers of other tables that name `deliveries` while
-- it is gone.
PRAGMA legacy_alter_table = ON;
CREATE TABLE deliveries_new (
    id            INTEGER PRIMARY KEY,
    lead_id       INTEGER NOT NULL REFERENCES leads (id),
    enrolment_id  INTEGER NOT NULL REFERENCES enrolments (id),
    campaign      TEXT    NOT NULL,
    step          INTEGER NOT NULL,
    template      TEXT    NOT NULL,
    state         TEXT    NOT NULL DEFAULT 'scheduled', -- scheduled | claimed | retry_wait | held | sent | tasked | failed | unknown | cancelled | skipped
    due_at        INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    claimed_by    TEXT,
    lease_until   INTEGER,
    message_id    TEXT,
    sent_at       INTEGER,
    last_error    TEXT,
    updated_at    INTEGER NOT NULL,
    cycle         INTEGER NOT NULL DEFAULT 0,
    started_at    INTEGER,
    provider_message_id TEXT,
    held_from     TEXT
);
INSERT INTO deliveries_new (id, lead_id, enrolment_id, campaign, step, template, state, due_at, attempts, claimed_by,
                            lease_until, message_id, sent_at, last_error, updated_at, cycle, started_at,
                            provider_message_id, held_from)
SELECT id, lead_id, enrolment_id, campaign, step, template, state, due_at, attempts, claimed_by,
       lease_until, message_id, sent_at, last_error, updated_at, cycle, started_at,
       provider_message_id, held_from
FROM deliveries ORDER BY id;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
PRAGMA legacy_alter_table = OFF;

CREATE UNIQUE INDEX deliveries_enrolment ON deliveries (enrolment_id, cycle, step);
CREATE INDEX deliveries_due ON deliveries (state, due_at);
CREATE INDEX deliveries_lease ON deliveries (lease_until) WHERE state = 'claimed';
CREATE INDEX deliveries_unknown ON deliveries (enrolment_id) WHERE state = 'unknown';
CREATE INDEX deliveries_provider_message_id ON deliveries (provider_message_id) WHERE provider_message_id IS NOT NULL;
CREATE INDEX deliveries_campaign_waiting ON deliveries (campaign, id) WHERE state IN ('scheduled', 'retry_wait');
CREATE INDEX deliveries_pending ON deliveries (due_at) WHERE state IN ('scheduled', 'retry_wait');
CREATE INDEX deliveries_sent ON deliveries (sent_at) WHERE state = 'sent';
CREATE INDEX deliveries_ended ON deliveries (state, updated_at) WHERE state IN ('failed', 'unknown');
CREATE INDEX deliveries_campaign_held ON deliveries (campaign) WHERE state = 'held';

CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries BEGIN
    INSERT INTO state_counts (part, state, campaign, n) VALUES ('deliveries', NEW.state, '', 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries BEGIN
    UPDATE state_counts SET n = n - 1 WHERE part = 'deliveries' AND state = OLD.state AND campaign = '';
END;
CREATE TRIGGER deliveries_count_update AFTER UPDATE OF state ON deliveries WHEN OLD.state IS NOT NEW.state BEGIN
    UPDATE state_counts SET n = n - 1 WHERE part = 'deliveries' AND state = OLD.state AND campaign = '';
    INSERT INTO state_counts (part, state, campaign, n) VALUES ('deliveries', NEW.state, '', 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER deliveries_report_insert AFTER INSERT ON deliveries
    WHEN NEW.state = 'sent' AND NEW.sent_at IS NOT NULL BEGIN
    UPDATE enrolments SET first_emailed_at = NEW.sent_at
    WHERE id = NEW.enrolment_id AND (first_emailed_at IS NULL OR first_emailed_at > NEW.sent_at);
END;
CREATE TRIGGER deliveries_report_sent AFTER UPDATE OF state, sent_at ON deliveries
    WHEN NEW.state = 'sent' AND NEW.sent_at IS NOT NULL AND OLD.state IS NOT 'sent' BEGIN
    UPDATE enrolments SET first_emailed_at = NEW.sent_at
    WHERE id = NEW.enrolment_id AND (first_emailed_at IS NULL OR first_emailed_at > NEW.sent_at);
END;
CREATE TRIGGER deliveries_report_unsent AFTER UPDATE OF state, sent_at, enrolment_id ON deliveries
    WHEN OLD.state = 'sent' AND (NEW.state IS NOT 'sent' OR NEW.sent_at IS NOT OLD.sent_at OR NEW.enrolment_id IS NOT OLD.enrolment_id) BEGIN
    UPDATE enrolments SET first_emailed_at = (SELECT min(d.sent_at) FROM deliveries d
                                              WHERE d.enrolment_id = enrolments.id AND d.state = 'sent')
    WHERE id IN (OLD.enrolment_id, NEW.enrolment_id);
END;
CREATE TRIGGER deliveries_report_delete AFTER DELETE ON deliveries WHEN OLD.state = 'sent' BEGIN
    UPDATE enrolments SET first_emailed_at = (SELECT min(d.sent_at) FROM deliveries d
                                              WHERE d.enrolment_id = enrolments.id AND d.state = 'sent')
    WHERE id = OLD.enrolment_id;
END;
