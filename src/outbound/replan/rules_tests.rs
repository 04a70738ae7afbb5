use super::*;
use crate::config::Settings;
use crate::domain::email::EmailAddress;
use crate::domain::lead::LeadState;

fn settings(extra: &str) -> Settings {
    let text = format!(
        r#"database_url = "sqlite::memory:"
default_timezone = "UTC"
[compliance]
postal_address = "1 Main St"
[sender]
from = "Acme <hello@acme.example>"
{extra}"#
    );
    Settings::from_toml(&text, "test.toml").unwrap()
}

const TWO: &str = r#"
[[segments]]
name = "sa"
campaign = "a"
lost_reason = ["no_budget"]
[[segments]]
name = "sb"
campaign = "b"
lost_reason = ["went_quiet"]
[campaigns.a]
first_after = "0d"
every = "7d"
max_touches = 3
templates = ["one", "two"]
send_window = { days = "Mon-Sun", hours = "00:00-24:00" }
[campaigns.b]
first_after = "0d"
every = "14d"
max_touches = 4
send_window = { days = "Mon-Sun", hours = "00:00-24:00" }
"#;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn waiting(step: u32, template: &str, due: &str, prev: Option<&str>) -> Waiting {
    Waiting {
        step,
        template: template.into(),
        due_at: t(due),
        retrying: false,
        anchor: t("2026-01-01T10:00:00Z"),
        prev_at: prev.map(t),
    }
}

#[test]
fn the_version_is_stable_and_changes_with_every_setting_that_matters() {
    let a = CampaignDef::of(&settings(TWO).campaigns["a"]);
    assert_eq!(
        a.version(),
        CampaignDef::of(&settings(TWO).campaigns["a"]).version()
    );
    assert_eq!(a.version().len(), 12);
    assert_eq!(CampaignDef::from_json(&a.to_json()), Some(a.clone()));
    let edits = [
        TWO.replace("max_touches = 3", "max_touches = 2"),
        TWO.replace(r#"templates = ["one", "two"]"#, r#"templates = ["one"]"#),
        TWO.replace("every = \"7d\"", "every = \"8d\""),
        TWO.replace(
            "first_after = \"0d\"\nevery = \"7d\"",
            "first_after = \"1d\"\nevery = \"7d\"",
        ),
    ];
    for edit in edits {
        let changed = CampaignDef::of(&settings(&edit).campaigns["a"]);
        assert_ne!(changed.version(), a.version(), "{edit}");
        assert_eq!(
            a.changes_to(&changed).len(),
            1,
            "{:?}",
            a.changes_to(&changed)
        );
    }
    // The window is normalised: the same window written differently is the same version.
    let spelled = TWO.replacen(
        r#"send_window = { days = "Mon-Sun", hours = "00:00-24:00" }"#,
        r#"send_window = { days = "mon-sun", hours = "0-24" }"#,
        1,
    );
    if let Ok(s) = Settings::from_toml(&settings_text(&spelled), "t.toml") {
        assert_eq!(CampaignDef::of(&s.campaigns["a"]).version(), a.version());
    }
}

fn settings_text(extra: &str) -> String {
    format!(
        "database_url = \"sqlite::memory:\"\ndefault_timezone = \"UTC\"\n[compliance]\npostal_address = \"1 Main St\"\n[sender]\nfrom = \"Acme <hello@acme.example>\"\n{extra}"
    )
}

#[test]
fn changes_are_listed_one_line_per_setting() {
    let old = CampaignDef::of(&settings(TWO).campaigns["a"]);
    let new = CampaignDef::of(
        &settings(
            &TWO.replace("max_touches = 3", "max_touches = 1")
                .replace("every = \"7d\"", "every = \"30d\""),
        )
        .campaigns["a"],
    );
    assert_eq!(
        old.changes_to(&new),
        ["every 7d → 30d", "max_touches 3 → 1"]
    );
    assert!(old.timing_differs(&new));
    assert!(old.changes_to(&old).is_empty());
    assert!(!old.timing_differs(&old));
}

#[test]
fn a_step_past_a_lowered_max_touches_is_cancelled_whatever_else_changed() {
    let now = t("2026-03-02T10:00:00Z");
    let old = CampaignDef::of(&settings(TWO).campaigns["a"]);
    let lowered = settings(&TWO.replace("max_touches = 3", "max_touches = 1"));
    for (step, cancel) in [(0, false), (1, true), (2, true), (7, true)] {
        let w = waiting(
            step,
            "two",
            "2026-03-09T10:00:00Z",
            Some("2026-03-02T10:00:00Z"),
        );
        let fate = fate(Some(&old), &lowered.campaigns["a"], &w, now, chrono_tz::UTC);
        assert_eq!(fate.cancel, cancel, "step {step}");
        if cancel {
            assert_eq!(fate.template, None);
            assert_eq!(fate.due_at, None);
        }
    }
}

#[test]
fn a_step_takes_the_template_the_new_config_names_and_the_last_repeats() {
    let now = t("2026-03-02T10:00:00Z");
    let old = CampaignDef::of(&settings(TWO).campaigns["a"]);
    let cases = [
        (r#"["one"]"#, 1, "two", Some("one")),
        (r#"["one"]"#, 0, "one", None),
        (r#"["x", "y", "z"]"#, 2, "two", Some("z")),
        (r#"["x", "y"]"#, 2, "two", Some("y")),
        (r#"["one", "two"]"#, 2, "two", None),
    ];
    for (templates, step, had, want) in cases {
        let s = settings(&TWO.replace(r#"["one", "two"]"#, templates));
        let w = waiting(
            step,
            had,
            "2026-03-09T10:00:00Z",
            Some("2026-03-02T10:00:00Z"),
        );
        let fate = fate(Some(&old), &s.campaigns["a"], &w, now, chrono_tz::UTC);
        assert_eq!(fate.template.as_deref(), want, "{templates} step {step}");
        assert!(!fate.cancel);
        assert_eq!(fate.due_at, None, "timing unchanged");
    }
}

#[test]
fn a_changed_rhythm_re_times_the_next_step_from_the_previous_one() {
    let now = t("2026-03-03T10:00:00Z");
    let old = CampaignDef::of(&settings(TWO).campaigns["a"]);
    let cases = [
        // (every, step, due, prev, want)
        (
            "30d",
            1,
            "2026-03-09T10:00:00Z",
            Some("2026-03-02T10:00:00Z"),
            Some("2026-04-01T10:00:00Z"),
        ),
        (
            "1d",
            1,
            "2026-03-09T10:00:00Z",
            Some("2026-03-02T10:00:00Z"),
            Some("2026-03-03T10:00:00Z"),
        ),
        // Already past under the new rhythm: due now, never before.
        (
            "12h",
            1,
            "2026-03-09T10:00:00Z",
            Some("2026-03-01T10:00:00Z"),
            Some("2026-03-03T10:00:00Z"),
        ),
        // Step 0 counts from the loss: a new rhythm does not move it.
        ("30d", 0, "2026-03-09T10:00:00Z", None, None),
        // The same rhythm: nothing moves.
        (
            "7d",
            1,
            "2026-03-09T10:00:00Z",
            Some("2026-03-02T10:00:00Z"),
            None,
        ),
    ];
    for (every, step, due, prev, want) in cases {
        let s = settings(&TWO.replacen("every = \"7d\"", &format!("every = \"{every}\""), 1));
        let w = waiting(step, if step == 0 { "one" } else { "two" }, due, prev);
        let got = fate(Some(&old), &s.campaigns["a"], &w, now, chrono_tz::UTC).due_at;
        assert_eq!(got, want.map(t), "{every} step {step}");
        // Without the old definition (applied before versions were kept) timing is kept.
        assert_eq!(
            fate(None, &s.campaigns["a"], &w, now, chrono_tz::UTC).due_at,
            None
        );
        // A retry keeps its time.
        let retry = Waiting {
            retrying: true,
            ..w
        };
        assert_eq!(
            fate(Some(&old), &s.campaigns["a"], &retry, now, chrono_tz::UTC).due_at,
            None
        );
    }
}

fn lead(reason: &str) -> Lead {
    let at = t("2026-01-01T10:00:00Z");
    Lead {
        id: 1,
        email: EmailAddress::parse("ann@acme.test").unwrap(),
        first_name: None,
        last_name: None,
        company: None,
        title: None,
        owner_email: None,
        owner_name: None,
        lost_reason: Some(reason.into()),
        lost_at: Some(at),
        timezone: None,
        tags: Vec::new(),
        fields: Default::default(),
        state: LeadState::Nurturing,
        created_at: at,
        updated_at: at,
    }
}

#[test]
fn a_removed_campaigns_lead_goes_where_its_segment_or_a_match_says_or_is_parked() {
    let now = t("2026-03-02T10:00:00Z");
    // `old` removed; segment `sa` names `a`, `sb` names `b`.
    let s = settings(TWO);
    let go = |campaign: &str, segment: &str| Destination::Campaign {
        campaign: campaign.into(),
        segment: segment.into(),
    };
    let cases = [
        // Its segment still exists and names a configured campaign.
        ("sa", "went_quiet", go("a", "sa")),
        // Its segment is gone: the first segment matching the lead.
        ("gone", "went_quiet", go("b", "sb")),
        ("gone", "no_budget", go("a", "sa")),
    ];
    for (segment, reason, want) in cases {
        let l = lead(reason);
        let got = destination(
            "old",
            segment,
            &s.segments,
            &s.campaigns,
            Some((&l, now, chrono_tz::UTC)),
        );
        assert_eq!(got, want, "{segment} {reason}");
    }
    let l = lead("other");
    assert!(matches!(
        destination("old", "gone", &s.segments, &s.campaigns, Some((&l, now, chrono_tz::UTC))),
        Destination::Park(reason) if reason.contains("campaign `old` was removed")
    ));
    // A segment that exists decides alone (config validation makes sure it names a
    // configured campaign); a segment that is gone needs the lead.
    assert!(decided_by_segment("old", "sa", &s.segments, &s.campaigns));
    assert!(!decided_by_segment(
        "old",
        "gone",
        &s.segments,
        &s.campaigns
    ));
    assert!(!decided_by_segment("a", "sa", &s.segments, &s.campaigns));
}

#[test]
fn a_moved_lead_continues_at_the_step_its_history_says() {
    let s = settings(TWO);
    let b = &s.campaigns["b"]; // every 14d, 4 touches
    let now = t("2026-03-03T10:00:00Z");
    let anchor = t("2026-01-01T10:00:00Z");
    let last = Some(t("2026-03-02T10:00:00Z"));
    let utc = chrono_tz::UTC;
    assert_eq!(continue_at(b, 0, None, anchor, now, utc), Some((0, now)));
    assert_eq!(
        continue_at(b, 1, last, anchor, now, utc),
        Some((1, t("2026-03-16T10:00:00Z")))
    );
    assert_eq!(
        continue_at(b, 3, last, anchor, now, utc),
        Some((3, t("2026-03-16T10:00:00Z")))
    );
    // Long ago: due now, not in the past.
    assert_eq!(
        continue_at(b, 2, Some(t("2025-01-01T10:00:00Z")), anchor, now, utc),
        Some((2, now))
    );
    // As many steps as `b` has, or more: it completes there.
    assert_eq!(continue_at(b, 4, last, anchor, now, utc), None);
    assert_eq!(continue_at(b, 9, last, anchor, now, utc), None);
}

#[test]
fn a_changed_lead_moves_unless_emailed_and_its_segment_says_stay() {
    let now = t("2026-03-02T10:00:00Z");
    let with_rule = |rule: &str| {
        settings(&TWO.replacen(
            "lost_reason = [\"no_budget\"]",
            &format!("lost_reason = [\"no_budget\"]\non_change = \"{rule}\""),
            1,
        ))
    };
    let to_b = Some(Destination::Campaign {
        campaign: "b".into(),
        segment: "sb".into(),
    });
    let quiet = lead("went_quiet");
    let utc = chrono_tz::UTC;
    // (rule of its segment `sa`, emailed, want)
    let cases = [
        ("stay", false, to_b.clone()),
        ("stay", true, None),
        ("move", false, to_b.clone()),
        ("move", true, to_b.clone()),
    ];
    for (rule, emailed, want) in cases {
        let s = with_rule(rule);
        let got = after_change(
            "a",
            "sa",
            emailed,
            &s.segments,
            &s.campaigns,
            (&quiet, now, utc),
        );
        assert_eq!(got, want, "{rule} {emailed}");
    }
    // The default rule is `stay`.
    let s = settings(TWO);
    assert_eq!(
        after_change(
            "a",
            "sa",
            true,
            &s.segments,
            &s.campaigns,
            (&quiet, now, utc)
        ),
        None
    );
    // Still its segment, the same campaign, or no segment at all: it stays.
    let budget = lead("no_budget");
    let other = lead("other");
    for (campaign, segment, l) in [
        ("a", "sa", &budget),
        ("b", "x", &quiet),
        ("a", "sa", &other),
    ] {
        assert_eq!(
            after_change(
                campaign,
                segment,
                false,
                &s.segments,
                &s.campaigns,
                (l, now, utc)
            ),
            None,
            "{campaign} {segment}"
        );
    }
}

#[test]
fn a_changed_first_after_or_window_re_times_the_first_step() {
    let now = t("2026-01-05T10:00:00Z");
    let old = CampaignDef::of(&settings(TWO).campaigns["a"]);
    let later = settings(&TWO.replacen("first_after = \"0d\"", "first_after = \"10d\"", 1));
    let w = waiting(0, "one", "2026-01-05T10:00:00Z", None);
    assert_eq!(
        fate(Some(&old), &later.campaigns["a"], &w, now, chrono_tz::UTC).due_at,
        Some(t("2026-01-11T10:00:00Z"))
    );
    // A later step keeps its time when only first_after changed.
    let w1 = waiting(
        1,
        "two",
        "2026-01-12T10:00:00Z",
        Some("2026-01-05T10:00:00Z"),
    );
    assert_eq!(
        fate(Some(&old), &later.campaigns["a"], &w1, now, chrono_tz::UTC).due_at,
        None
    );
    // A narrower window moves both into it.
    let office = settings(&TWO.replacen(
        r#"send_window = { days = "Mon-Sun", hours = "00:00-24:00" }"#,
        r#"send_window = { days = "Mon-Fri", hours = "09:00-17:00" }"#,
        1,
    ));
    let sunday = waiting(
        1,
        "two",
        "2026-01-11T10:00:00Z",
        Some("2026-01-04T10:00:00Z"),
    );
    assert_eq!(
        fate(
            Some(&old),
            &office.campaigns["a"],
            &sunday,
            now,
            chrono_tz::UTC
        )
        .due_at,
        Some(t("2026-01-12T09:00:00Z"))
    );
    assert!(old.retimes(&CampaignDef::of(&office.campaigns["a"]), 0));
    assert!(!old.retimes(&CampaignDef::of(&later.campaigns["a"]), 1));
}
