-- rewarm schema (SQLite). Time stamps are INTEGER milliseconds since the Unix epoch (UTC);
-- tags and custom fields are JSON text.

CREATE TABLE leads (
    id           INTEGER PRIMARY KEY,
    email        TEXT    NOT NULL UNIQUE,          -- normalised (trimmed, lower-case)
    first_name   TEXT,
    last_name    TEXT,
    company      TEXT,
    title        TEXT,
    owner_email  TEXT,
    owner_name   TEXT,
    lost_reason  TEXT,
    lost_at      INTEGER,
    timezone     TEXT,
    tags         TEXT    NOT NULL DEFAULT '[]',
    fields       TEXT    NOT NULL DEFAULT '{}',
    state        TEXT    NOT NULL DEFAULT 'new',   -- new | nurturing | completed | rewarmed | suppressed
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX leads_state ON leads (state, id);

-- The lead's timeline: every state change, import, enrolment and delivery outcome.
CREATE TABLE events (
    id       INTEGER PRIMARY KEY,
    lead_id  INTEGER NOT NULL REFERENCES leads (id),
    at       INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    detail   TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX events_lead ON events (lead_id, id);

CREATE TABLE enrolments (
    id           INTEGER PRIMARY KEY,
    lead_id      INTEGER NOT NULL REFERENCES leads (id),
    campaign     TEXT    NOT NULL,
    segment      TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'active', -- active | completed | stopped
    enrolled_at  INTEGER NOT NULL,
    ended_at     INTEGER,
    UNIQUE (lead_id, campaign)
);
CREATE INDEX enrolments_state ON enrolments (state);

-- One email to one lead for one step. (lead, campaign, step) is unique: no step twice.
CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY,
    lead_id       INTEGER NOT NULL REFERENCES leads (id),
    enrolment_id  INTEGER NOT NULL REFERENCES enrolments (id),
    campaign      TEXT    NOT NULL,
    step          INTEGER NOT NULL,
    template      TEXT    NOT NULL,
    state         TEXT    NOT NULL DEFAULT 'scheduled', -- scheduled | claimed | retry_wait | sent | failed | unknown | cancelled
    due_at        INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    claimed_by    TEXT,
    lease_until   INTEGER,
    message_id    TEXT,
    sent_at       INTEGER,
    last_error    TEXT,
    updated_at    INTEGER NOT NULL,
    UNIQUE (lead_id, campaign, step)
);
CREATE INDEX deliveries_due ON deliveries (state, due_at);
CREATE INDEX deliveries_enrolment ON deliveries (enrolment_id, step);
