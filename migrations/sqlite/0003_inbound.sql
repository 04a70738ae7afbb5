-- Inbound mail, the notification outbox and small daemon state (SQLite).

-- Every message that came back (IMAP, webhooks, `inbound replay`), matched or not: unmatched
-- mail is kept for review, never dropped. `dedupe_key` makes a provider's retry a no-op.
CREATE TABLE inbound (
    id              INTEGER PRIMARY KEY,
    dedupe_key      TEXT    NOT NULL UNIQUE,
    source          TEXT    NOT NULL,             -- imap | postmark | mailgun | sendgrid | raw | replay
    received_at     INTEGER NOT NULL,
    message_id      TEXT,
    from_address    TEXT,
    subject         TEXT,
    classification  TEXT    NOT NULL,             -- human_reply | auto_reply | hard_bounce | soft_bounce | complaint | unsubscribe | other
    lead_id         INTEGER,
    delivery_id     INTEGER,
    matched_by      TEXT,                         -- token | in_reply_to | report | sender (NULL = unmatched)
    text            TEXT,
    raw             BLOB    NOT NULL,
    effects         TEXT    NOT NULL DEFAULT '{}', -- JSON: what the message did
    created_at      INTEGER NOT NULL
);
CREATE INDEX inbound_lead ON inbound (lead_id, id);
CREATE INDEX inbound_unmatched ON inbound (id) WHERE lead_id IS NULL;

-- The notification outbox: written in the same transaction as the change it reports.
CREATE TABLE notifications (
    id               INTEGER PRIMARY KEY,
    idempotency_key  TEXT    NOT NULL UNIQUE,
    kind             TEXT    NOT NULL,            -- owner_email | webhook | digest
    lead_id          INTEGER,
    payload          TEXT    NOT NULL DEFAULT '{}',
    state            TEXT    NOT NULL DEFAULT 'pending', -- pending | claimed | sent | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_at          INTEGER NOT NULL,
    claimed_by       TEXT,
    lease_until      INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
);
CREATE INDEX notifications_due ON notifications (state, next_at);

-- Small named values the daemon keeps across restarts (IMAP UIDVALIDITY / last UID, …).
CREATE TABLE kv_state (
    id          INTEGER PRIMARY KEY,
    key         TEXT    NOT NULL UNIQUE,
    value       TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Deliveries by the Message-ID we gave them (replies' In-Reply-To / References).
CREATE INDEX deliveries_message_id ON deliveries (message_id) WHERE message_id IS NOT NULL;
