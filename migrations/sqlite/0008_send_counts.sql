-- Durable, shared sending limits (SQLite): the sends counted against the daily caps, per limit
-- key and time bucket, so a cap holds across restarts (see src/transport/limits/caps.rs).
--
-- limit_key: `*` for the whole transport, else a recipient domain (an alias's target).
-- minute:    the bucket's first minute (minutes since the Unix epoch).
-- width:     the bucket's length in minutes: 1 for a key with a cap (the transport, a domain
--            with a budget), 60 for a domain counted only for `status`.
-- sent:      sends reserved in the bucket, minus those that certainly did not leave.
CREATE TABLE IF NOT EXISTS send_counts (
    limit_key TEXT NOT NULL,
    minute INTEGER NOT NULL,
    width INTEGER NOT NULL,
    sent INTEGER NOT NULL,
    PRIMARY KEY (limit_key, minute, width)
) WITHOUT ROWID;

-- Pruning what left the window and `status`'s busiest domains read by time.
CREATE INDEX IF NOT EXISTS send_counts_minute ON send_counts (minute);
