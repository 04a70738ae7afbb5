-- One step once, keyed by enrolment instead of by lead (PostgreSQL; issue 12; SQLite 0024).
--
-- `UNIQUE (lead_id, campaign, cycle, step)` put every next step a send pass schedules at its
-- lead's place in the key's B-tree: a random leaf per email, read and dirtied in
-- `shared_buffers` and written by the checkpointer. An enrolment is one lead in one campaign
-- and carries its round (`cycle`), so the unique index `deliveries_enrolment (enrolment_id,
-- cycle, step)` says the same: no step twice within one round, and a pass (which sends in due
-- order, the order enrolments were written in) puts a wave's next steps on neighbouring
-- leaves. It replaces the index of that name on (enrolment_id, step).
--
-- A lead's deliveries are now found through its enrolments (`UNIQUE (lead_id, campaign)`):
-- `enrolment_id IN (SELECT id FROM enrolments WHERE lead_id = …)` (`of_leads!` in
-- src/store/shared.rs). Every delivery has an enrolment of the same lead.
DROP INDEX deliveries_enrolment;
CREATE UNIQUE INDEX deliveries_enrolment ON deliveries (enrolment_id, cycle, step);
ALTER TABLE deliveries DROP CONSTRAINT deliveries_lead_campaign_cycle_step;
