-- Inbound mail, the notification outbox and small daemon state (PostgreSQL).

-- Every message that came back (IMAP, webhooks, `inbound replay`), matched or not: unmatched
-- mail is kept for review, never dropped. `dedupe_key` makes a provider's retry a no-op.
CREATE TABLE inbound (
    id              bigserial   PRIMARY KEY,
    dedupe_key      text        NOT NULL UNIQUE,
    source          text        NOT NULL,
    received_at     timestamptz NOT NULL,
    message_id      text,
    from_address    text,
    subject         text,
    classification  text        NOT NULL,
    lead_id         bigint,
    delivery_id     bigint,
    matched_by      text,
    text            text,
    raw             bytea       NOT NULL,
    effects         jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL
);
CREATE INDEX inbound_lead ON inbound (lead_id, id);
CREATE INDEX inbound_unmatched ON inbound (id) WHERE lead_id IS NULL;

-- The notification outbox: written in the same transaction as the change it reports.
CREATE TABLE notifications (
    id               bigserial   PRIMARY KEY,
    idempotency_key  text        NOT NULL UNIQUE,
    kind             text        NOT NULL,
    lead_id          bigint,
    payload          jsonb       NOT NULL DEFAULT '{}',
    state            text        NOT NULL DEFAULT 'pending',
    attempts         bigint      NOT NULL DEFAULT 0,
    next_at          timestamptz NOT NULL,
    claimed_by       text,
    lease_until      timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL,
    sent_at          timestamptz
);
CREATE INDEX notifications_due ON notifications (state, next_at);

-- Small named values the daemon keeps across restarts (IMAP UIDVALIDITY / last UID, …).
CREATE TABLE kv_state (
    id          bigserial   PRIMARY KEY,
    key         text        NOT NULL UNIQUE,
    value       text        NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE INDEX deliveries_message_id ON deliveries (message_id) WHERE message_id IS NOT NULL;
