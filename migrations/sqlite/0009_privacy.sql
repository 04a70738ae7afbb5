-- Forgotten people (SQLite): `leads forget` erases a lead's personal data and keeps only this
-- keyed hash of its normalised address (HMAC-SHA256 under the database's `forget_pepper`
-- secret), which every import and the API check, so the person is never imported again.
CREATE TABLE forgotten (
    id          INTEGER PRIMARY KEY,
    hash        TEXT    NOT NULL UNIQUE,           -- lower-case hex
    reason      TEXT    NOT NULL,                  -- forgotten, or the suppression reason it replaced
    created_at  INTEGER NOT NULL
);
