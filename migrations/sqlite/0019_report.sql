-- `rewarm report` at a million leads (SQLite): each enrolment carries its report window and
-- the first time each funnel stage happened in it, kept by triggers in the same transaction
-- as every write of an event, a delivery or an enrolment, whichever code path makes it.
-- The report then reads one row per enrolment instead of joining every event
-- (`report --verify` recomputes the same figures from the event log and compares).
--
-- An enrolment's window runs from its `enrolled_at` to the lead's next enrolment
-- (`window_until`, NULL while it is the latest); an event belongs to every enrolment whose
-- window holds its time. The stages: emailed (the first `sent` delivery of the enrolment),
-- replied, re-warmed, won, out of scope, unsubscribed (an unsubscribe or a complaint) and
-- bounced (a hard bounce), each the time of the first such event in the window.
ALTER TABLE enrolments ADD COLUMN window_until INTEGER;
ALTER TABLE enrolments ADD COLUMN first_emailed_at INTEGER;
ALTER TABLE enrolments ADD COLUMN first_replied_at INTEGER;
ALTER TABLE enrolments ADD COLUMN first_rewarmed_at INTEGER;
ALTER TABLE enrolments ADD COLUMN first_won_at INTEGER;
ALTER TABLE enrolments ADD COLUMN first_out_of_scope_at INTEGER;
ALTER TABLE enrolments ADD COLUMN first_unsubscribed_at INTEGER;
ALTER TABLE enrolments ADD COLUMN first_bounced_at INTEGER;

-- Recomputing one lead's windows and stages from the event log: `INSERT INTO
-- report_recompute (lead_id) VALUES (…)` runs the trigger below (SQLite has no procedures;
-- the view holds nothing). The writes that change windows (a new, moved or deleted
-- enrolment; a changed or deleted event) are rare and use it; the frequent ones (a new
-- event, a sent delivery) update the stage in place.
CREATE VIEW report_recompute (lead_id) AS SELECT NULL WHERE 0;
CREATE TRIGGER report_recompute_lead INSTEAD OF INSERT ON report_recompute BEGIN
    UPDATE enrolments SET window_until = (
        SELECT min(n.enrolled_at) FROM enrolments n
        WHERE n.lead_id = enrolments.lead_id AND n.enrolled_at > enrolments.enrolled_at)
    WHERE lead_id = NEW.lead_id;
    UPDATE enrolments SET
        first_emailed_at = (SELECT min(d.sent_at) FROM deliveries d
                            WHERE d.enrolment_id = enrolments.id AND d.state = 'sent'),
        first_replied_at = (SELECT min(v.at) FROM events v WHERE v.lead_id = enrolments.lead_id AND v.kind = 'replied'
                            AND v.at >= enrolments.enrolled_at AND (enrolments.window_until IS NULL OR v.at < enrolments.window_until)),
        first_rewarmed_at = (SELECT min(v.at) FROM events v WHERE v.lead_id = enrolments.lead_id AND v.kind = 'rewarmed'
                            AND v.at >= enrolments.enrolled_at AND (enrolments.window_until IS NULL OR v.at < enrolments.window_until)),
        first_won_at = (SELECT min(v.at) FROM events v WHERE v.lead_id = enrolments.lead_id AND v.kind = 'won'
                            AND v.at >= enrolments.enrolled_at AND (enrolments.window_until IS NULL OR v.at < enrolments.window_until)),
        first_out_of_scope_at = (SELECT min(v.at) FROM events v WHERE v.lead_id = enrolments.lead_id AND v.kind = 'out_of_scope'
                            AND v.at >= enrolments.enrolled_at AND (enrolments.window_until IS NULL OR v.at < enrolments.window_until)),
        first_unsubscribed_at = (SELECT min(v.at) FROM events v WHERE v.lead_id = enrolments.lead_id AND v.kind = 'suppressed'
                            AND v.detail->>'reason' IN ('unsubscribed', 'complaint')
                            AND v.at >= enrolments.enrolled_at AND (enrolments.window_until IS NULL OR v.at < enrolments.window_until)),
        first_bounced_at = (SELECT min(v.at) FROM events v WHERE v.lead_id = enrolments.lead_id AND v.kind = 'suppressed'
                            AND v.detail->>'reason' = 'hard_bounce'
                            AND v.at >= enrolments.enrolled_at AND (enrolments.window_until IS NULL OR v.at < enrolments.window_until))
    WHERE lead_id = NEW.lead_id;
END;

-- The rows already there.
INSERT INTO report_recompute (lead_id) SELECT DISTINCT lead_id FROM enrolments;

-- A new event of a stage: the enrolments whose window holds it keep the earlier time.
CREATE TRIGGER events_report_insert AFTER INSERT ON events
    WHEN NEW.kind IN ('replied', 'rewarmed', 'won', 'out_of_scope')
      OR (NEW.kind = 'suppressed' AND NEW.detail->>'reason' IN ('unsubscribed', 'complaint', 'hard_bounce')) BEGIN
    UPDATE enrolments SET
        first_replied_at = CASE WHEN NEW.kind = 'replied' THEN min(coalesce(first_replied_at, NEW.at), NEW.at) ELSE first_replied_at END,
        first_rewarmed_at = CASE WHEN NEW.kind = 'rewarmed' THEN min(coalesce(first_rewarmed_at, NEW.at), NEW.at) ELSE first_rewarmed_at END,
        first_won_at = CASE WHEN NEW.kind = 'won' THEN min(coalesce(first_won_at, NEW.at), NEW.at) ELSE first_won_at END,
        first_out_of_scope_at = CASE WHEN NEW.kind = 'out_of_scope' THEN min(coalesce(first_out_of_scope_at, NEW.at), NEW.at) ELSE first_out_of_scope_at END,
        first_unsubscribed_at = CASE WHEN NEW.kind = 'suppressed' AND NEW.detail->>'reason' IN ('unsubscribed', 'complaint')
                                THEN min(coalesce(first_unsubscribed_at, NEW.at), NEW.at) ELSE first_unsubscribed_at END,
        first_bounced_at = CASE WHEN NEW.kind = 'suppressed' AND NEW.detail->>'reason' = 'hard_bounce'
                                THEN min(coalesce(first_bounced_at, NEW.at), NEW.at) ELSE first_bounced_at END
    WHERE lead_id = NEW.lead_id AND enrolled_at <= NEW.at AND (window_until IS NULL OR NEW.at < window_until);
END;
-- A changed or deleted event (`leads forget` rewrites details; `db copy --force` empties
-- the table): its lead is recomputed.
CREATE TRIGGER events_report_update AFTER UPDATE OF lead_id, at, kind, detail ON events BEGIN
    INSERT INTO report_recompute (lead_id) VALUES (OLD.lead_id);
    INSERT INTO report_recompute (lead_id) SELECT NEW.lead_id WHERE NEW.lead_id IS NOT OLD.lead_id;
END;
CREATE TRIGGER events_report_delete AFTER DELETE ON events
    WHEN OLD.kind IN ('replied', 'rewarmed', 'won', 'out_of_scope', 'suppressed') BEGIN
    INSERT INTO report_recompute (lead_id) VALUES (OLD.lead_id);
END;

-- A new enrolment: its lead is recomputed when the windows change (the lead has another
-- enrolment) or when history already falls in it (events at or after it, sent deliveries:
-- `db copy` writes those before or after); a first enrolment of a fresh lead costs three
-- index probes.
CREATE TRIGGER enrolments_report_insert AFTER INSERT ON enrolments
    WHEN EXISTS (SELECT 1 FROM enrolments o WHERE o.lead_id = NEW.lead_id AND o.id <> NEW.id)
      OR EXISTS (SELECT 1 FROM events v WHERE v.lead_id = NEW.lead_id
                 AND v.kind IN ('replied', 'rewarmed', 'won', 'out_of_scope', 'suppressed') AND v.at >= NEW.enrolled_at)
      OR EXISTS (SELECT 1 FROM deliveries d WHERE d.enrolment_id = NEW.id AND d.state = 'sent') BEGIN
    INSERT INTO report_recompute (lead_id) VALUES (NEW.lead_id);
END;
-- Re-entering a campaign moves the enrolment's start (and so the windows of the lead).
CREATE TRIGGER enrolments_report_update AFTER UPDATE OF lead_id, enrolled_at ON enrolments
    WHEN OLD.enrolled_at IS NOT NEW.enrolled_at OR OLD.lead_id IS NOT NEW.lead_id BEGIN
    INSERT INTO report_recompute (lead_id) VALUES (NEW.lead_id);
    INSERT INTO report_recompute (lead_id) SELECT OLD.lead_id WHERE NEW.lead_id IS NOT OLD.lead_id;
END;
CREATE TRIGGER enrolments_report_delete AFTER DELETE ON enrolments BEGIN
    INSERT INTO report_recompute (lead_id) VALUES (OLD.lead_id);
END;

-- Deliveries: the first send is the common write (one row update, then never again for the
-- enrolment); a sent delivery changed or removed recomputes its enrolment's first send.
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
