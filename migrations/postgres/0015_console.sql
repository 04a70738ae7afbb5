-- The web console (src/console): who may sign in, the sign-in links and sessions (only
-- hashes of their secrets are kept), and what people did in it.

-- Invited people and their role; a lead owner without a row is a `sales` user.
CREATE TABLE console_users (
    id          bigserial   PRIMARY KEY,
    email       text        NOT NULL UNIQUE,       -- lower case
    role        text        NOT NULL,              -- admin | marketing | sales
    invited_by  text        NOT NULL,
    created_at  timestamptz NOT NULL
);

-- A sign-in link: single use, expiring. `token_hash` is the SHA-256 (hex) of the link's token.
CREATE TABLE console_signins (
    id          bigserial   PRIMARY KEY,
    token_hash  text        NOT NULL UNIQUE,
    email       text        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX console_signins_expiry ON console_signins (expires_at);

-- A signed-in browser. `token_hash` is the SHA-256 (hex) of the cookie's secret.
CREATE TABLE console_sessions (
    id          bigserial   PRIMARY KEY,
    token_hash  text        NOT NULL UNIQUE,
    email       text        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- Console actions that belong to no lead (invites, sign-ins, sign-outs); actions on a lead
-- are that lead's events, with `by`.
CREATE TABLE console_events (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text        NOT NULL,
    kind        text        NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX console_events_at ON console_events (at);
