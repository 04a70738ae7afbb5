-- A sent email's event is found through its delivery, not by its lead (SQLite; issue 12).
--
-- Every email sent writes a `sent` event. In `events_lead (lead_id, id)` its entry went to
-- the sending lead's place, a random leaf of a B-tree as large as the whole history: a page
-- read and written to the WAL per email, the largest random write left in a send pass (a
-- 1M pass on a copy without the index: 157 s against 165–201 s). Everything else a lead's
-- history holds is written in lead order (an import's `imported`, an enrolment's
-- `enrolled`) or seldom (replies, clicks, state changes).
--
-- So a `sent` event now names its delivery (`delivery_id`, set for every event an outcome
-- records: sent, retried, deferred, failed), and these events enter `events_delivery
-- (delivery_id, kind)`: deliveries go out in due order, which is the order they were
-- written in, so their entries land at the index's right edge. (Its two columns make it the
-- index a look-up of `delivery_id = … AND kind = 'sent'` takes, not `events_kind_at`.) A lead's history reads its other events from `events_lead` and its
-- sent emails through its deliveries (the unique key starts with `lead_id`) and this index.
--
-- The `sent` events already stored are linked to their delivery by the Message-ID both hold;
-- one that could not be (none is expected) stays in `events_lead`.
ALTER TABLE events ADD COLUMN delivery_id INTEGER;
UPDATE events SET delivery_id = (SELECT d.id FROM deliveries d
                                 WHERE d.lead_id = events.lead_id AND d.message_id = events.detail->>'message_id')
 WHERE kind = 'sent';
DROP INDEX events_lead;
CREATE INDEX events_lead ON events (lead_id, id) WHERE kind <> 'sent' OR delivery_id IS NULL;
CREATE INDEX events_delivery ON events (delivery_id, kind) WHERE delivery_id IS NOT NULL;

-- Recomputing a lead's report stages read its events of one kind from `events_lead`. SQLite
-- uses a partial index only when the query spells the index's condition, so the trigger now
-- names the report's stages and reads the small `events_report` (0021) instead.
DROP TRIGGER report_recompute_lead;
CREATE TRIGGER report_recompute_lead INSTEAD OF INSERT ON report_recompute BEGIN
    UPDATE enrolments SET
        window_until = (SELECT min(n.enrolled_at) FROM enrolments n
                        WHERE n.lead_id = enrolments.lead_id AND n.enrolled_at > enrolments.enrolled_at),
        lead_enrolments = (SELECT count(*) FROM enrolments n WHERE n.lead_id = enrolments.lead_id)
    WHERE lead_id = NEW.lead_id;
    UPDATE enrolments SET
        first_emailed_at = (SELECT min(d.sent_at) FROM deliveries d
                            WHERE d.enrolment_id = enrolments.id AND d.state = 'sent'),
        first_replied_at = (SELECT min(v.at) FROM events v WHERE v.lead_id = enrolments.lead_id AND v.kind = 'replied' AND v.kind IN ('replied', 'rewarmed', 'won', 'out_of_scope', 'suppressed')
                            AND v.at >= enrolments.enrolled_at AND (enrolments.window_until IS NULL OR v.at < enrolments.window_until)),
        first_rewarmed_at = (SELECT min(v.at) FROM events v WHERE v.lead_id = enrolments.lead_id AND v.kind = 'rewarmed' AND v.kind IN ('replied', 'rewarmed', 'won', 'out_of_scope', 'suppressed')
                            AND v.at >= enrolments.enrolled_at AND (enrolments.window_until IS NULL OR v.at < enrolments.window_until)),
        first_won_at = (SELECT min(v.at) FROM events v WHERE v.lead_id = enrolments.lead_id AND v.kind = 'won' AND v.kind IN ('replied', 'rewarmed', 'won', 'out_of_scope', 'suppressed')
                            AND v.at >= enrolments.enrolled_at AND (enrolments.window_until IS NULL OR v.at < enrolments.window_until)),
        first_out_of_scope_at = (SELECT min(v.at) FROM events v WHERE v.lead_id = enrolments.lead_id AND v.kind = 'out_of_scope' AND v.kind IN ('replied', 'rewarmed', 'won', 'out_of_scope', 'suppressed')
                            AND v.at >= enrolments.enrolled_at AND (enrolments.window_until IS NULL OR v.at < enrolments.window_until)),
        first_unsubscribed_at = (SELECT min(v.at) FROM events v WHERE v.lead_id = enrolments.lead_id AND v.kind = 'suppressed' AND v.kind IN ('replied', 'rewarmed', 'won', 'out_of_scope', 'suppressed')
                            AND v.detail->>'reason' IN ('unsubscribed', 'complaint')
                            AND v.at >= enrolments.enrolled_at AND (enrolments.window_until IS NULL OR v.at < enrolments.window_until)),
        first_bounced_at = (SELECT min(v.at) FROM events v WHERE v.lead_id = enrolments.lead_id AND v.kind = 'suppressed' AND v.kind IN ('replied', 'rewarmed', 'won', 'out_of_scope', 'suppressed')
                            AND v.detail->>'reason' = 'hard_bounce'
                            AND v.at >= enrolments.enrolled_at AND (enrolments.window_until IS NULL OR v.at < enrolments.window_until))
    WHERE lead_id = NEW.lead_id;
END;
