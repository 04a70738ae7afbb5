-- Counts for `status` at a million leads (SQLite): leads per state, enrolments per campaign
-- and state, deliveries per state, kept by triggers in the same transaction as every change,
-- whichever code path makes it, so `status` reads a handful of rows instead of counting
-- every lead. A row may hold 0 (readers skip those).
CREATE TABLE state_counts (
    part   TEXT    NOT NULL,   -- leads | enrolments | deliveries
    state  TEXT    NOT NULL,
    campaign TEXT  NOT NULL DEFAULT '',   -- enrolments only
    n      INTEGER NOT NULL,
    PRIMARY KEY (part, state, campaign)
) WITHOUT ROWID;

INSERT INTO state_counts (part, state, campaign, n)
    SELECT 'leads', state, '', count(*) FROM leads GROUP BY state;
INSERT INTO state_counts (part, state, campaign, n)
    SELECT 'enrolments', state, campaign, count(*) FROM enrolments GROUP BY state, campaign;
INSERT INTO state_counts (part, state, campaign, n)
    SELECT 'deliveries', state, '', count(*) FROM deliveries GROUP BY state;

CREATE TRIGGER leads_count_insert AFTER INSERT ON leads BEGIN
    INSERT INTO state_counts (part, state, campaign, n) VALUES ('leads', NEW.state, '', 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER leads_count_delete AFTER DELETE ON leads BEGIN
    UPDATE state_counts SET n = n - 1 WHERE part = 'leads' AND state = OLD.state AND campaign = '';
END;
CREATE TRIGGER leads_count_update AFTER UPDATE OF state ON leads WHEN OLD.state IS NOT NEW.state BEGIN
    UPDATE state_counts SET n = n - 1 WHERE part = 'leads' AND state = OLD.state AND campaign = '';
    INSERT INTO state_counts (part, state, campaign, n) VALUES ('leads', NEW.state, '', 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER enrolments_count_insert AFTER INSERT ON enrolments BEGIN
    INSERT INTO state_counts (part, state, campaign, n) VALUES ('enrolments', NEW.state, NEW.campaign, 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER enrolments_count_delete AFTER DELETE ON enrolments BEGIN
    UPDATE state_counts SET n = n - 1 WHERE part = 'enrolments' AND state = OLD.state AND campaign = OLD.campaign;
END;
CREATE TRIGGER enrolments_count_update AFTER UPDATE OF state, campaign ON enrolments
    WHEN OLD.state IS NOT NEW.state OR OLD.campaign IS NOT NEW.campaign BEGIN
    UPDATE state_counts SET n = n - 1 WHERE part = 'enrolments' AND state = OLD.state AND campaign = OLD.campaign;
    INSERT INTO state_counts (part, state, campaign, n) VALUES ('enrolments', NEW.state, NEW.campaign, 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;

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

-- `status`' "failed / written off today": a range of the few ended rows, not every delivery
-- of the state.
CREATE INDEX deliveries_ended ON deliveries (state, updated_at) WHERE state IN ('failed', 'unknown');

-- Each pass looks for leads whose data changed since the last `updated` event it saw: these
-- few events by id, not a walk over every event after the watermark (all of them, when no
-- lead ever changed).
CREATE INDEX events_updated ON events (id) WHERE kind = 'updated';
