-- One index fewer written per email sent (PostgreSQL; issue 12): see
-- migrations/sqlite/0022_message_id.sql. Ours are signed tokens, matched by verifying them,
-- never by a look-up of the stored Message-ID; each sent row's Message-ID went into this
-- index at a random place.
DROP INDEX IF EXISTS deliveries_message_id;
