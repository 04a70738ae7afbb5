-- No JIT inside the counter and report triggers (issue 12). These statement triggers run
-- small queries over one statement's transition tables, but the planner's estimates for their
-- look-ups grow with the tables they probe, past `jit_above_cost`: at a million leads
-- PostgreSQL compiled the enrolments' report query with JIT at every page of the enrolment
-- pass — 110 of a 200 ms insert of 3,500 enrolments (12–18 ms a page at 100k), the whole
-- 1M enrolment 151.7 s with JIT, 131.0 s without. Compiling never pays for itself on
-- queries this small; the setting holds while each function runs, so the plans it caches
-- are made without JIT. The queries rewarm sends itself are left to the server's setting.
ALTER FUNCTION rewarm_count_leads() SET jit = off;
ALTER FUNCTION rewarm_count_enrolments() SET jit = off;
ALTER FUNCTION rewarm_count_deliveries() SET jit = off;
ALTER FUNCTION rewarm_report_recompute(bigint[]) SET jit = off;
ALTER FUNCTION rewarm_report_events_added() SET jit = off;
ALTER FUNCTION rewarm_report_events_changed() SET jit = off;
ALTER FUNCTION rewarm_report_enrolments_changed() SET jit = off;
ALTER FUNCTION rewarm_report_deliveries() SET jit = off;
