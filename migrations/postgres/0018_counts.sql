-- Counts for `status` at a million leads (PostgreSQL): leads per state, enrolments per
-- campaign and state, deliveries per state, kept by statement-level triggers in the same
-- transaction as every change, whichever code path makes it.
--
-- Each statement that changes states appends its net changes as rows (one per state it
-- moved, from its transition tables): appends never wait on each other, so daemons claiming
-- side by side do not queue on a shared counter row. Readers sum per key; `status` folds the
-- rows into one per key first (`FOLD_COUNTS`), so they stay few.
CREATE TABLE state_counts (
    part     text   NOT NULL,   -- leads | enrolments | deliveries
    state    text   NOT NULL,
    campaign text   NOT NULL DEFAULT '',   -- enrolments only
    n        bigint NOT NULL
);
CREATE INDEX state_counts_key ON state_counts (part, state, campaign);

INSERT INTO state_counts (part, state, campaign, n)
    SELECT 'leads', state, '', count(*) FROM leads GROUP BY state;
INSERT INTO state_counts (part, state, campaign, n)
    SELECT 'enrolments', state, campaign, count(*) FROM enrolments GROUP BY state, campaign;
INSERT INTO state_counts (part, state, campaign, n)
    SELECT 'deliveries', state, '', count(*) FROM deliveries GROUP BY state;

-- One function per table; TG_OP says which transition tables exist (`gone` for UPDATE and
-- DELETE, `came` for INSERT and UPDATE).
CREATE FUNCTION rewarm_count_leads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO state_counts (part, state, n) SELECT 'leads', state, count(*) FROM came GROUP BY state;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO state_counts (part, state, n) SELECT 'leads', state, -count(*) FROM gone GROUP BY state;
    ELSE
        INSERT INTO state_counts (part, state, n)
        SELECT 'leads', state, sum(d) FROM (SELECT state, -1 AS d FROM gone UNION ALL SELECT state, 1 FROM came) x
        GROUP BY state HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION rewarm_count_enrolments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO state_counts (part, state, campaign, n)
        SELECT 'enrolments', state, campaign, count(*) FROM came GROUP BY state, campaign;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO state_counts (part, state, campaign, n)
        SELECT 'enrolments', state, campaign, -count(*) FROM gone GROUP BY state, campaign;
    ELSE
        INSERT INTO state_counts (part, state, campaign, n)
        SELECT 'enrolments', state, campaign, sum(d)
        FROM (SELECT state, campaign, -1 AS d FROM gone UNION ALL SELECT state, campaign, 1 FROM came) x
        GROUP BY state, campaign HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION rewarm_count_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO state_counts (part, state, n) SELECT 'deliveries', state, count(*) FROM came GROUP BY state;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO state_counts (part, state, n) SELECT 'deliveries', state, -count(*) FROM gone GROUP BY state;
    ELSE
        INSERT INTO state_counts (part, state, n)
        SELECT 'deliveries', state, sum(d) FROM (SELECT state, -1 AS d FROM gone UNION ALL SELECT state, 1 FROM came) x
        GROUP BY state HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER leads_count_insert AFTER INSERT ON leads REFERENCING NEW TABLE AS came
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_count_leads();
CREATE TRIGGER leads_count_update AFTER UPDATE ON leads REFERENCING OLD TABLE AS gone NEW TABLE AS came
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_count_leads();
CREATE TRIGGER leads_count_delete AFTER DELETE ON leads REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_count_leads();
CREATE TRIGGER enrolments_count_insert AFTER INSERT ON enrolments REFERENCING NEW TABLE AS came
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_count_enrolments();
CREATE TRIGGER enrolments_count_update AFTER UPDATE ON enrolments REFERENCING OLD TABLE AS gone NEW TABLE AS came
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_count_enrolments();
CREATE TRIGGER enrolments_count_delete AFTER DELETE ON enrolments REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_count_enrolments();
CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries REFERENCING NEW TABLE AS came
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_count_deliveries();
CREATE TRIGGER deliveries_count_update AFTER UPDATE ON deliveries REFERENCING OLD TABLE AS gone NEW TABLE AS came
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_count_deliveries();
CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION rewarm_count_deliveries();

-- `status`' "failed / written off today": a range of the few ended rows, not every delivery
-- of the state.
CREATE INDEX deliveries_ended ON deliveries (state, updated_at) WHERE state IN ('failed', 'unknown');

-- Each pass looks for leads whose data changed since the last `updated` event it saw: these
-- few events by id, not a walk over every event after the watermark (all of them, when no
-- lead ever changed).
CREATE INDEX events_updated ON events (id) WHERE kind = 'updated';
