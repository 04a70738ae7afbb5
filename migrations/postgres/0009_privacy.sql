-- Forgotten people (PostgreSQL): `leads forget` erases a lead's personal data and keeps only
-- this keyed hash of its normalised address (HMAC-SHA256 under the database's
-- `forget_pepper` secret), which every import and the API check, so the person is never
-- imported again.
CREATE TABLE forgotten (
    id          bigserial   PRIMARY KEY,
    hash        text        NOT NULL UNIQUE,       -- lower-case hex
    reason      text        NOT NULL,              -- forgotten, or the suppression reason it replaced
    created_at  timestamptz NOT NULL
);
