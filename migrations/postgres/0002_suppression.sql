-- The global suppression list and named secrets (PostgreSQL).

-- One entry per address: a normalised email address, or '@domain' for a whole domain.
-- Nothing is ever sent to a listed address or to any address at a listed domain.
CREATE TABLE suppressions (
    id          bigserial   PRIMARY KEY,
    address     text        NOT NULL UNIQUE,
    reason      text        NOT NULL,              -- unsubscribed | hard_bounce | complaint | manual
    evidence    jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL
);

-- Secrets generated once and kept here (e.g. the token signing key when none is configured).
CREATE TABLE secrets (
    id          bigserial   PRIMARY KEY,
    name        text        NOT NULL UNIQUE,
    value       text        NOT NULL,
    created_at  timestamptz NOT NULL
);

-- '@' and the domain of an email (after its last '@'), for domain suppressions.
CREATE FUNCTION rewarm_at_domain(email text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT '@' || split_part(email, '@', -1) $$;
CREATE INDEX leads_at_domain ON leads (rewarm_at_domain(email));
