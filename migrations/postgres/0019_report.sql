-- `rewarm report` at a million leads (PostgreSQL): each enrolment carries its report window
-- and the first time each funnel stage happened in it, kept by triggers in the same
-- transaction as every write of an event, a delivery or an enrolment, whichever code path
-- makes it. The report then reads one row per enrolment instead of joining every event
-- (`report --verify` recomputes the same figures from the event log and compares).
--
-- An enrolment's window runs from its `enrolled_at` to the lead's next enrolment
-- (`window_until`, NULL while it is the latest); an event belongs to every enrolment whose
-- window holds its time. The stages: emailed (the first `sent` delivery of the enrolment),
-- replied, re-warmed, won, out of scope, unsubscribed (an unsubscribe or a complaint) and
-- bounced (a hard bounce), each the time of the first such event in the window.
ALTER TABLE enrolments
    ADD COLUMN window_until timestamptz,
    ADD COLUMN first_emailed_at timestamptz,
    ADD COLUMN first_replied_at timestamptz,
    ADD COLUMN first_rewarmed_at timestamptz,
    ADD COLUMN first_won_at timestamptz,
    ADD COLUMN first_out_of_scope_at timestamptz,
    ADD COLUMN first_unsubscribed_at timestamptz,
    ADD COLUMN first_bounced_at timestamptz;

-- Recomputing some leads' windows and stages from the event log. The writes that change
-- windows (new, moved or deleted enrolments; changed or deleted events) are rare and use
-- it; the frequent ones (a new event, a sent delivery) update the stage in place.
-- An empty list does nothing (and writes nothing, so the statement triggers below do not
-- fire again).
CREATE FUNCTION rewarm_report_recompute(leads bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(leads) = 0 THEN
        RETURN;
    END IF;
    UPDATE enrolments e SET window_until = (
        SELECT min(n.enrolled_at) FROM enrolments n
        WHERE n.lead_id = e.lead_id AND n.enrolled_at > e.enrolled_at)
    WHERE e.lead_id = ANY (leads);
    UPDATE enrolments e SET
        first_emailed_at = (SELECT min(d.sent_at) FROM deliveries d WHERE d.enrolment_id = e.id AND d.state = 'sent'),
        first_replied_at = s.replied, first_rewarmed_at = s.rewarmed, first_won_at = s.won,
        first_out_of_scope_at = s.out_of_scope, first_unsubscribed_at = s.unsubscribed, first_bounced_at = s.bounced
    FROM (SELECT w.id,
                 min(v.at) FILTER (WHERE v.kind = 'replied') AS replied,
                 min(v.at) FILTER (WHERE v.kind = 'rewarmed') AS rewarmed,
                 min(v.at) FILTER (WHERE v.kind = 'won') AS won,
                 min(v.at) FILTER (WHERE v.kind = 'out_of_scope') AS out_of_scope,
                 min(v.at) FILTER (WHERE v.kind = 'suppressed' AND v.detail->>'reason' IN ('unsubscribed', 'complaint')) AS unsubscribed,
                 min(v.at) FILTER (WHERE v.kind = 'suppressed' AND v.detail->>'reason' = 'hard_bounce') AS bounced
          FROM enrolments w
          LEFT JOIN events v ON v.lead_id = w.lead_id
                            AND v.kind IN ('replied', 'rewarmed', 'won', 'out_of_scope', 'suppressed')
                            AND v.at >= w.enrolled_at AND (w.window_until IS NULL OR v.at < w.window_until)
          WHERE w.lead_id = ANY (leads)
          GROUP BY w.id) s
    WHERE e.id = s.id;
END $$;

-- The rows already there.
SELECT rewarm_report_recompute(ARRAY(SELECT DISTINCT lead_id FROM enrolments));

-- A new event of a stage: the enrolments whose window holds it keep the earlier time.
CREATE FUNCTION rewarm_report_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    reason text := NEW.detail->>'reason';
BEGIN
    UPDATE enrolments SET
        first_replied_at = CASE WHEN NEW.kind = 'replied' THEN LEAST(first_replied_at, NEW.at) ELSE first_replied_at END,
        first_rewarmed_at = CASE WHEN NEW.kind = 'rewarmed' THEN LEAST(first_rewarmed_at, NEW.at) ELSE first_rewarmed_at END,
        first_won_at = CASE WHEN NEW.kind = 'won' THEN LEAST(first_won_at, NEW.at) ELSE first_won_at END,
        first_out_of_scope_at = CASE WHEN NEW.kind = 'out_of_scope' THEN LEAST(first_out_of_scope_at, NEW.at) ELSE first_out_of_scope_at END,
        first_unsubscribed_at = CASE WHEN NEW.kind = 'suppressed' AND reason IN ('unsubscribed', 'complaint')
                                THEN LEAST(first_unsubscribed_at, NEW.at) ELSE first_unsubscribed_at END,
        first_bounced_at = CASE WHEN NEW.kind = 'suppressed' AND reason = 'hard_bounce'
                           THEN LEAST(first_bounced_at, NEW.at) ELSE first_bounced_at END
    WHERE lead_id = NEW.lead_id AND enrolled_at <= NEW.at AND (window_until IS NULL OR NEW.at < window_until);
    RETURN NULL;
END $$;
CREATE TRIGGER events_report_insert AFTER INSERT ON events FOR EACH ROW
    WHEN (NEW.kind IN ('replied', 'rewarmed', 'won', 'out_of_scope')
          OR (NEW.kind = 'suppressed' AND NEW.detail->>'reason' IN ('unsubscribed', 'complaint', 'hard_bounce')))
    EXECUTE FUNCTION rewarm_report_event();

-- Changed or deleted events (`leads forget` rewrites details; `db copy --force` empties the
-- table) and new, moved or deleted enrolments: their leads are recomputed. TG_OP says which
-- transition tables exist (`gone` for UPDATE and DELETE, `came` for INSERT and UPDATE).
CREATE FUNCTION rewarm_report_events_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM rewarm_report_recompute(ARRAY(
            SELECT DISTINCT lead_id FROM gone WHERE kind IN ('replied', 'rewarmed', 'won', 'out_of_scope', 'suppressed')));
    ELSE
        PERFORM rewarm_report_recompute(ARRAY(
            SELECT o.lead_id FROM gone o JOIN came n ON n.id = o.id
            WHERE (o.lead_id, o.at, o.kind, o.detail) IS DISTINCT FROM (n.lead_id, n.at, n.kind, n.detail)
            UNION SELECT n.lead_id FROM gone o JOIN came n ON n.id = o.id WHERE n.lead_id <> o.lead_id));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER events_report_update AFTER UPDATE ON events REFERENCING OLD TABLE AS gone NEW TABLE AS came
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_report_events_changed();
CREATE TRIGGER events_report_delete AFTER DELETE ON events REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_report_events_changed();

-- A new enrolment recomputes its lead only when the windows change (the lead has another
-- enrolment) or history already falls in it (events at or after it, sent deliveries: `db
-- copy` writes those before or after); fresh leads' first enrolments cost nothing more.
CREATE FUNCTION rewarm_report_enrolments_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM rewarm_report_recompute(ARRAY(
            SELECT DISTINCT c.lead_id FROM came c
            WHERE EXISTS (SELECT 1 FROM enrolments o WHERE o.lead_id = c.lead_id AND o.id <> c.id)
               OR EXISTS (SELECT 1 FROM events v WHERE v.lead_id = c.lead_id
                          AND v.kind IN ('replied', 'rewarmed', 'won', 'out_of_scope', 'suppressed') AND v.at >= c.enrolled_at)
               OR EXISTS (SELECT 1 FROM deliveries d WHERE d.enrolment_id = c.id AND d.state = 'sent')));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM rewarm_report_recompute(ARRAY(SELECT DISTINCT lead_id FROM gone));
    ELSE
        PERFORM rewarm_report_recompute(ARRAY(
            SELECT o.lead_id FROM gone o JOIN came n ON n.id = o.id
            WHERE n.enrolled_at IS DISTINCT FROM o.enrolled_at OR n.lead_id <> o.lead_id
            UNION SELECT n.lead_id FROM gone o JOIN came n ON n.id = o.id WHERE n.lead_id <> o.lead_id));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER enrolments_report_insert AFTER INSERT ON enrolments REFERENCING NEW TABLE AS came
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_report_enrolments_changed();
CREATE TRIGGER enrolments_report_update AFTER UPDATE ON enrolments REFERENCING OLD TABLE AS gone NEW TABLE AS came
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_report_enrolments_changed();
CREATE TRIGGER enrolments_report_delete AFTER DELETE ON enrolments REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_report_enrolments_changed();

-- Deliveries: the first send of an enrolment is the common write (once per enrolment); a
-- sent delivery changed or removed recomputes its enrolment's first send.
CREATE FUNCTION rewarm_report_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        IF EXISTS (SELECT 1 FROM came WHERE state = 'sent') THEN
            UPDATE enrolments e SET first_emailed_at = m.at
            FROM (SELECT enrolment_id, min(sent_at) AS at FROM came
                  WHERE state = 'sent' AND sent_at IS NOT NULL GROUP BY enrolment_id) m
            WHERE e.id = m.enrolment_id AND (e.first_emailed_at IS NULL OR e.first_emailed_at > m.at);
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF EXISTS (SELECT 1 FROM gone o JOIN came n ON n.id = o.id WHERE o.state = 'sent'
                   AND (n.state <> 'sent' OR n.sent_at IS DISTINCT FROM o.sent_at OR n.enrolment_id <> o.enrolment_id)) THEN
            UPDATE enrolments e SET first_emailed_at = (SELECT min(d.sent_at) FROM deliveries d
                                                        WHERE d.enrolment_id = e.id AND d.state = 'sent')
            WHERE e.id IN (SELECT o.enrolment_id FROM gone o JOIN came n ON n.id = o.id WHERE o.state = 'sent'
                           AND (n.state <> 'sent' OR n.sent_at IS DISTINCT FROM o.sent_at OR n.enrolment_id <> o.enrolment_id));
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF EXISTS (SELECT 1 FROM gone WHERE state = 'sent') THEN
            UPDATE enrolments e SET first_emailed_at = (SELECT min(d.sent_at) FROM deliveries d
                                                        WHERE d.enrolment_id = e.id AND d.state = 'sent')
            WHERE e.id IN (SELECT enrolment_id FROM gone WHERE state = 'sent');
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER deliveries_report_insert AFTER INSERT ON deliveries REFERENCING NEW TABLE AS came
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_report_deliveries();
CREATE TRIGGER deliveries_report_update AFTER UPDATE ON deliveries REFERENCING OLD TABLE AS gone NEW TABLE AS came
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_report_deliveries();
CREATE TRIGGER deliveries_report_delete AFTER DELETE ON deliveries REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_report_deliveries();
