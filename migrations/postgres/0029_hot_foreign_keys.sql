-- The foreign keys of a lead's events and deliveries on `leads` go (PostgreSQL only; issue 12).
--
-- PostgreSQL checks a foreign key with a query per inserted row that also locks the parent
-- row (`SELECT 1 FROM leads WHERE id = $1 FOR KEY SHARE`): a WAL record and a dirtied page
-- of `leads` for every event and every delivery written. A send pass writes one of each per
-- email, so each email took two such look-ups and locks of its lead (and a third of its
-- enrolment, kept below). `auto_explain` of a 10k pass counted 19,994 of them; without
-- these two keys the same pass used ~19 % less of the machine's CPU (docs/performance.md).
--
-- What the keys guarded still holds:
-- * a delivery's lead exists because its enrolment does (`deliveries_enrolment_id_fkey`,
--   kept) and an enrolment's lead does (`enrolments_lead_id_fkey`, kept): every path writes
--   a delivery's `lead_id` from its enrolment or from an earlier delivery of it;
-- * no lead row is ever deleted (`leads forget` keeps the row and empties it; only
--   `db copy --force` empties the tables, children first), so no event or delivery loses its
--   lead afterwards;
-- * SQLite keeps both keys (a look-up in the process, no lock), and the test suite runs every
--   write path on SQLite with them checked.
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_lead_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_lead_id_fkey;
