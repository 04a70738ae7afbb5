//! Unit tests of `explain` (its own file to keep `explain.rs` readable).

use super::*;
use crate::domain::email::EmailAddress;
use chrono::TimeZone;

const CONFIG: &str = r#"
[compliance]
postal_address = "Acme, 1 Street, Paris"
[sender]
from = "Acme <hello@acme.example>"
[[segments]]
name = "enterprise"
campaign = "hello"
tags = ["enterprise"]
[[segments]]
name = "budget"
campaign = "hello"
lost_reason = ["no_budget"]
[campaigns.hello]
first_after = "30d"
every = "30d"
skip_holidays = true
"#;

fn t(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

fn lead(state: LeadState) -> Lead {
    Lead {
        id: 1,
        email: EmailAddress::parse("ann@example.com").unwrap(),
        first_name: None,
        last_name: None,
        company: None,
        title: None,
        owner_email: None,
        owner_name: None,
        lost_reason: Some("no_budget".into()),
        lost_at: Some(t(2026, 11, 25, 15)),
        timezone: Some(chrono_tz::America::New_York),
        tags: vec![],
        fields: [("country".to_string(), "USA".to_string())].into(),
        state,
        created_at: t(2026, 11, 26, 12),
        updated_at: t(2026, 11, 26, 12),
    }
}

fn held(due: DateTime<Utc>) -> LeadDelivery {
    LeadDelivery {
        campaign: "hello".into(),
        cycle: 0,
        step: 0,
        template: "hello".into(),
        state: "held".into(),
        held_from: Some("scheduled".into()),
        due_at: due,
        sent_at: None,
        attempts: 0,
        last_error: None,
        updated_at: t(2026, 12, 1, 12),
    }
}

#[test]
fn a_held_step_of_a_paused_campaign_says_why_when_and_how_to_bring_it_back() {
    let settings = Settings::from_toml(CONFIG, "test.toml").unwrap();
    let lead = lead(LeadState::Nurturing);
    // 30 days after 25 Nov 10:00 EST is Christmas: moved to Monday 28 Dec 09:00 EST.
    let deliveries = [held(t(2026, 12, 28, 14))];
    let paused = [PausedCampaign {
        name: "hello".into(),
        paused_at: t(2026, 12, 1, 12),
        paused_by: "marketing".into(),
    }];
    let timeline = [Event {
        at: t(2026, 11, 26, 12),
        kind: "enrolled".into(),
        detail: serde_json::json!({"campaign": "hello", "segment": "budget"}),
    }];
    let facts = Facts {
        settings: &settings,
        lead: &lead,
        lifecycle: LeadLifecycle::default(),
        deliveries: &deliveries,
        timeline: &timeline,
        paused: &paused,
        score: 7,
        suppressed: None,
        versions: Versions::default(),
        now: t(2026, 12, 2, 12),
    };
    let story = explain(&facts).join("\n");
    for want in [
        "ann@example.com: nurturing, score 7; zone America/New_York, country US (from its zone) — its `country` field `USA` is not a two-letter ISO 3166 code, so it is ignored",
        "`enterprise` does not: missing tag `enterprise`",
        "`budget` matches → campaign `hello`",
        "paused Tue 2026-12-01 07:00 EST (2026-12-01 12:00 UTC) by marketing",
        "Next email: step 1 `hello` due Mon 2026-12-28 09:00 EST (2026-12-28 14:00 UTC) — held",
        "closed day: Fri 2026-12-25 is a holiday in US: Christmas Day",
        "held: campaign `hello` is paused",
        "Stopped: campaign `hello` is paused; `rewarm campaigns resume hello` brings it back",
    ] {
        assert!(story.contains(want), "{want}\n---\n{story}");
    }
    assert!(!story.contains("overdue"), "{story}");
}

#[test]
fn a_lead_no_segment_takes_says_so() {
    let settings = Settings::from_toml(CONFIG, "test.toml").unwrap();
    let mut lead = lead(LeadState::New);
    lead.lost_reason = Some("price".into());
    let facts = Facts {
        settings: &settings,
        lead: &lead,
        lifecycle: LeadLifecycle::default(),
        deliveries: &[],
        timeline: &[],
        paused: &[],
        score: 0,
        suppressed: None,
        versions: Versions::default(),
        now: t(2026, 12, 2, 12),
    };
    let story = explain(&facts);
    assert!(
        story.contains(&"  no segment matches now".to_string()),
        "{story:?}"
    );
    assert!(
        story
            .last()
            .unwrap()
            .starts_with("Not enrolled: no segment matches"),
        "{story:?}"
    );
    assert!(story.contains(&"Next email: none scheduled".to_string()));
}

#[test]
fn the_lateness_policy_is_told_with_its_default_visible() {
    assert_eq!(
        lateness(&Lateness::default()),
        "no `late_after`, so no step is ever late: a step goes out when it is reached and the rest of the cadence moves with it (`late = \"shift\"`, the default)"
    );
    let skip = Lateness {
        after: Some(TimeDelta::days(2)),
        policy: LatePolicy::Skip,
    };
    assert_eq!(
        lateness(&skip),
        "a step reached more than 2d after its due time is skipped, the next step staying on its planned date (`late = \"skip\"`)"
    );
    assert_eq!(span(TimeDelta::hours(36)), "36h");
    assert_eq!(span(TimeDelta::minutes(90)), "90m");
    assert_eq!(span(TimeDelta::seconds(0)), "0s");
}
