-- The webhook relay's cursor (notify::relay) starts at the end of the event log of a
-- database that already has one: upgrading does not post its whole history. A database with
-- no event gets no row (an empty database stays empty for `db copy`): the cursor starts at 0.
INSERT INTO kv_state (key, value, updated_at)
SELECT 'notify:relay:after', CAST(COALESCE(max(id), 0) AS TEXT), CAST(strftime('%s', 'now') AS INTEGER) * 1000
FROM events WHERE true HAVING count(*) > 0
ON CONFLICT (key) DO NOTHING;
