-- A sent email's event is found through its delivery, not by its lead (PostgreSQL; issue
-- 12): see migrations/sqlite/0023_sent_events.sql. Each `sent` event's entry in
-- `events_lead` went to a random place; in `events_delivery` it goes to the right edge, as
-- deliveries go out in the order they were written. A lead's history reads its other events
-- from `events_lead` and its sent emails through its deliveries and `events_delivery`.
ALTER TABLE events ADD COLUMN delivery_id bigint;
UPDATE events v SET delivery_id = d.id FROM deliveries d
 WHERE v.kind = 'sent' AND d.lead_id = v.lead_id AND d.message_id = v.detail->>'message_id';
DROP INDEX IF EXISTS events_lead;
CREATE INDEX events_lead ON events (lead_id, id) WHERE kind <> 'sent' OR delivery_id IS NULL;
CREATE INDEX events_delivery ON events (delivery_id, kind) WHERE delivery_id IS NOT NULL;
