-- The web console (src/console): who may sign in, the sign-in links and sessions (only
-- hashes of their secrets are kept), and what people did in it.

-- Invited people and their role; a lead owner without a row is a `sales` user.
CREATE TABLE console_users (
    id          INTEGER PRIMARY KEY,
    email       TEXT    NOT NULL UNIQUE,           -- lower case
    role        TEXT    NOT NULL,                  -- admin | marketing | sales
    invited_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

-- A sign-in link: single use, expiring. `token_hash` is the SHA-256 (hex) of the link's token.
CREATE TABLE console_signins (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT    NOT NULL UNIQUE,
    email       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX console_signins_expiry ON console_signins (expires_at);

-- A signed-in browser. `token_hash` is the SHA-256 (hex) of the cookie's secret.
CREATE TABLE console_sessions (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT    NOT NULL UNIQUE,
    email       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- Console actions that belong to no lead (invites, sign-ins, sign-outs); actions on a lead
-- are that lead's events, with `by`.
CREATE TABLE console_events (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    detail      TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX console_events_at ON console_events (at);
