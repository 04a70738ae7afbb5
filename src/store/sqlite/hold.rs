//! Held work on SQLite: paused campaigns and the deliveries they and paused
//! leads hold, with the statements both databases share (`store/hold.rs`).

use serde_json::json;

use super::*;
use crate::store::hold::*;

impl HoldStore for SqliteStore {
    hold_methods!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pass read the paused campaigns, then `campaigns resume` committed before the pass's
    /// write: the write holds nothing of the campaign resumed meanwhile (it used to hold its
    /// released rows again, for good).
    #[tokio::test]
    async fn a_campaign_resumed_after_a_pass_read_it_is_not_held_again() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("hold.db").display());
        let store = SqliteStore::connect(&url).await.expect("open");
        store.migrate().await.expect("migrate");
        let now = DateTime::parse_from_rfc3339("2026-06-02T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        for sql in [
            "INSERT INTO leads (id, email, state, created_at, updated_at) VALUES (1, 'a@b.example', 'nurturing', 0, 0)",
            "INSERT INTO enrolments (id, lead_id, campaign, segment, state, enrolled_at) VALUES (1, 1, 'hello', 's', 'active', 0)",
            "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at)
             VALUES (1, 1, 'hello', 0, 't', 'scheduled', 0, 0)",
        ] {
            sqlx::query(sql).execute(&store.pool).await.expect("row");
        }
        store
            .pause_campaign("hello", "ann", now)
            .await
            .expect("pause");
        // The pass reads the list here; the resume commits; then the pass writes.
        let stale = store.paused_campaigns().await.expect("paused");
        assert_eq!(stale.len(), 1);
        store
            .resume_campaign("hello", "ann", now)
            .await
            .expect("resume");
        assert_eq!(store.hold_new(now).await.expect("pass"), 0);
        for sql in HOLD_CAMPAIGN {
            sqlx::query(sql)
                .bind("hello")
                .bind(Time(now))
                .bind(json!({"campaign": "hello"}))
                .execute(&store.pool)
                .await
                .expect("hold");
        }
        let (state, paused): (String, i64) = sqlx::query_as(
            "SELECT (SELECT state FROM deliveries), (SELECT count(*) FROM events WHERE kind = 'paused')",
        )
        .fetch_one(&store.pool)
        .await
        .expect("state");
        assert_eq!(
            (state.as_str(), paused),
            ("scheduled", 1),
            "only the pause's own event"
        );
    }
}
