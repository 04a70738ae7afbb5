-- Fewer and cheaper index look-ups per lead enrolled (PostgreSQL; issue 12).
--
-- A new enrolment asks whether its lead already has history in the report's window: events
-- of the report's stages at or after it (the statement trigger `enrolments_report_insert`,
-- 0019). Since `events_lead_kind` went (0020), that read each of the lead's events from the
-- heap to see its kind and time: a random page per enrolment. This index holds only the
-- events of those stages (a few per re-warmed lead, none for most), so the question is one
-- probe of a small B-tree; the events a send pass writes (`sent`, `enrolled`, …) never
-- enter it.
CREATE INDEX events_report ON events (lead_id, at)
    WHERE kind IN ('replied', 'rewarmed', 'won', 'out_of_scope', 'suppressed');

-- `enrolments_state (state)` doubled `enrolments_state_campaign (state, campaign)`, which
-- serves every question on the state alone: one index entry less per enrolment written
-- (and, enrolments being updated at every first email, per update that is not HOT).
DROP INDEX enrolments_state;

-- `leads_owner (lower(owner_email))` doubled `leads_owner_id (lower(owner_email), id)` (0016),
-- which serves every question on the owner alone and those ordered by id. A lead's update
-- that is not HOT (every change of its state: enrolment, re-warm, the unmatched marks)
-- writes an entry into each of the 15 indexes of `leads`: one fewer here. (SQLite keeps its
-- `leads_owner`: its `leads_owner_state` puts the state before the row id, so the owner's
-- leads in id order need the shorter one.)
DROP INDEX leads_owner;
