-- Fewer and cheaper index look-ups per lead enrolled (SQLite; issue 12).
--
-- A new enrolment asks whether its lead already has history in the report's window: events
-- of the report's stages at or after it (trigger `enrolments_report_insert`, 0019). Since
-- `events_lead_kind` went (0020), that read each of the lead's events from the table to see
-- its kind and time: a random page per enrolment, 2.3 of a 1M enrolment's ~31 s. This index
-- holds only the events of those stages (a few per re-warmed lead, none for most), so the
-- question is one probe of a small B-tree; the events a send pass writes (`sent`,
-- `enrolled`, …) never enter it.
CREATE INDEX events_report ON events (lead_id, at)
    WHERE kind IN ('replied', 'rewarmed', 'won', 'out_of_scope', 'suppressed');

-- `enrolments_state (state)` doubled `enrolments_state_campaign (state, campaign)`, which
-- serves every question on the state alone: one B-tree less per enrolment made or ended.
DROP INDEX enrolments_state;
