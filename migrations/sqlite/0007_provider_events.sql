-- Provider event webhooks (SQLite): the id an email provider gave each message it took, so
-- its bounce / complaint / delivered events find their delivery; and an index that lets an
-- effect (a bounce, a complaint) apply once per delivery whichever channel reported it
-- (a DSN in the reply mailbox, a provider's event webhook).

ALTER TABLE deliveries ADD COLUMN provider_message_id TEXT;  -- Postmark MessageID, SendGrid X-Message-Id, Mailgun id
CREATE INDEX deliveries_provider_message_id ON deliveries (provider_message_id) WHERE provider_message_id IS NOT NULL;

CREATE INDEX inbound_delivery ON inbound (delivery_id, classification) WHERE delivery_id IS NOT NULL;
