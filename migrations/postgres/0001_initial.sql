-- rewarm schema (PostgreSQL). The same tables, columns and states as migrations/sqlite/,
-- in native types: time stamps are timestamptz (written at millisecond precision, as on
-- SQLite), tags/fields/details are jsonb, ids are bigserial.

CREATE TABLE leads (
    id           bigserial   PRIMARY KEY,
    email        text        NOT NULL UNIQUE,          -- normalised (trimmed, lower-case)
    first_name   text,
    last_name    text,
    company      text,
    title        text,
    owner_email  text,
    owner_name   text,
    lost_reason  text,
    lost_at      timestamptz,
    timezone     text,
    tags         jsonb       NOT NULL DEFAULT '[]',
    fields       jsonb       NOT NULL DEFAULT '{}',
    state        text        NOT NULL DEFAULT 'new',   -- new | nurturing | completed | rewarmed | suppressed
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX leads_state ON leads (state, id);

-- The lead's timeline: every state change, import, enrolment and delivery outcome.
CREATE TABLE events (
    id       bigserial   PRIMARY KEY,
    lead_id  bigint      NOT NULL REFERENCES leads (id),
    at       timestamptz NOT NULL,
    kind     text        NOT NULL,
    detail   jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX events_lead ON events (lead_id, id);
CREATE INDEX events_kind_at ON events (kind, at);

CREATE TABLE enrolments (
    id           bigserial   PRIMARY KEY,
    lead_id      bigint      NOT NULL REFERENCES leads (id),
    campaign     text        NOT NULL,
    segment      text        NOT NULL,
    state        text        NOT NULL DEFAULT 'active', -- active | completed | stopped
    enrolled_at  timestamptz NOT NULL,
    ended_at     timestamptz,
    UNIQUE (lead_id, campaign)
);
CREATE INDEX enrolments_state ON enrolments (state);

-- One email to one lead for one step. (lead, campaign, step) is unique: no step twice.
-- Claims are leases: claimed_by + lease_until, taken with FOR UPDATE SKIP LOCKED.
CREATE TABLE deliveries (
    id            bigserial   PRIMARY KEY,
    lead_id       bigint      NOT NULL REFERENCES leads (id),
    enrolment_id  bigint      NOT NULL REFERENCES enrolments (id),
    campaign      text        NOT NULL,
    step          bigint      NOT NULL,
    template      text        NOT NULL,
    state         text        NOT NULL DEFAULT 'scheduled', -- scheduled | claimed | retry_wait | sent | failed | unknown | cancelled
    due_at        timestamptz NOT NULL,
    attempts      bigint      NOT NULL DEFAULT 0,
    claimed_by    text,
    lease_until   timestamptz,
    message_id    text,
    sent_at       timestamptz,
    last_error    text,
    updated_at    timestamptz NOT NULL,
    UNIQUE (lead_id, campaign, step)
);
CREATE INDEX deliveries_due ON deliveries (state, due_at);
CREATE INDEX deliveries_enrolment ON deliveries (enrolment_id, step);
CREATE INDEX deliveries_sent_at ON deliveries (sent_at);
CREATE INDEX deliveries_lead ON deliveries (lead_id);
-- Only claimed rows carry a live lease: expire_leases scans this small index.
CREATE INDEX deliveries_lease ON deliveries (lease_until) WHERE state = 'claimed';

-- Batches travel as one jsonb parameter with time stamps as integer milliseconds since the
-- epoch (the same batch format as the SQLite store); this turns one into a timestamptz exactly.
CREATE FUNCTION rewarm_ms(ms bigint) RETURNS timestamptz
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    AS $$ SELECT timestamptz '1970-01-01 00:00:00+00' + ms * interval '1 millisecond' $$;
