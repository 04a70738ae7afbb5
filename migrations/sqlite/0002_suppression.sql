-- The global suppression list and named secrets (SQLite).

-- One entry per address: a normalised email address, or '@domain' for a whole domain.
-- Nothing is ever sent to a listed address or to any address at a listed domain.
CREATE TABLE suppressions (
    id          INTEGER PRIMARY KEY,
    address     TEXT    NOT NULL UNIQUE,
    reason      TEXT    NOT NULL,                  -- unsubscribed | hard_bounce | complaint | manual
    evidence    TEXT    NOT NULL DEFAULT '{}',     -- JSON
    created_at  INTEGER NOT NULL
);

-- Secrets generated once and kept here (e.g. the token signing key when none is configured).
CREATE TABLE secrets (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    value       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

-- '@' and the domain of a lead's email (from its last '@'), for domain suppressions. Queries
-- must spell the expression exactly like this to use the index:
--   substr(email, length(rtrim(email, replace(email, '@', ''))))
CREATE INDEX leads_at_domain ON leads (substr(email, length(rtrim(email, replace(email, '@', '')))));
