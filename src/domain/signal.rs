//! Which engagement signals show a person's interest, and how much they still weigh.
//!
//! Link scanners in corporate mail systems fetch every link of an email as it arrives, often
//! with `HEAD` or a prefetch header, sometimes a few times. Counting those as interest makes
//! "hot" leads that are not. A click here is judged against the delivery it came from and
//! the clicks of that delivery before it:
//!
//! | the request | verdict |
//! |---|---|
//! | `HEAD` | machine (`head`) |
//! | `Purpose: prefetch`, any `Sec-Purpose`, `X-Moz: prefetch`, `X-Purpose: preview` | machine (`prefetch`) |
//! | within `click_grace` of the delivery (default 60 s) | machine (`within_grace`) |
//! | within `click_burst` of a click on another link of the same email (default 10 s) | machine (`burst`); a click of that burst that was counted is taken back: the burst is one machine signal |
//! | a link whose click counted in the last 24 h | `repeat` (not counted again) |
//! | anything else | counted |
//!
//! Scores decay: each signal's points halve every `half_life` (default 30 days), so interest
//! of last year does not add up with a click of today to a re-warm.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

/// How clicks are judged (`[scoring]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickPolicy {
    /// A click this soon after the email went out is a scanner's.
    pub grace: Duration,
    /// Clicks on different links of one email this close together are one machine.
    pub burst: Duration,
    /// One link counts once in this long.
    pub repeat: Duration,
}

impl Default for ClickPolicy {
    fn default() -> Self {
        ClickPolicy {
            grace: Duration::seconds(60),
            burst: Duration::seconds(10),
            repeat: Duration::hours(24),
        }
    }
}

/// What the HTTP request says about who asks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClickRequest {
    pub head: bool,
    pub prefetch: bool,
}

impl ClickRequest {
    /// From the method and the header values (`name`, `value`, names in any case).
    pub fn from_parts<'a>(
        method: &str,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let prefetch = headers.into_iter().any(|(name, value)| {
            let value = value.trim().to_ascii_lowercase();
            match name.to_ascii_lowercase().as_str() {
                "sec-purpose" => !value.is_empty(),
                "purpose" | "x-moz" => value.contains("prefetch") || value.contains("preview"),
                "x-purpose" => value.contains("preview") || value.contains("prefetch"),
                _ => false,
            }
        });
        ClickRequest {
            head: method.eq_ignore_ascii_case("HEAD"),
            prefetch,
        }
    }
}

/// An earlier click on the same email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorClick {
    pub at: DateTime<Utc>,
    pub url: String,
    pub counted: bool,
    /// Judged part of a burst (whose counted click was taken back then).
    pub burst: bool,
}

/// Why a click is not interest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClickVerdict {
    Counted,
    Head,
    Prefetch,
    WithinGrace,
    Burst,
    Repeat,
}

impl ClickVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            ClickVerdict::Counted => "counted",
            ClickVerdict::Head => "head",
            ClickVerdict::Prefetch => "prefetch",
            ClickVerdict::WithinGrace => "within_grace",
            ClickVerdict::Burst => "burst",
            ClickVerdict::Repeat => "repeat",
        }
    }

    pub fn counted(self) -> bool {
        self == ClickVerdict::Counted
    }
}

/// A click's verdict, and how many counted clicks of its burst are taken back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: ClickVerdict,
    pub retract: usize,
}

/// Judges a click at `at` on `url` of an email delivered at `delivered_at`, given the earlier
/// clicks of that email (any order).
pub fn judge_click(
    policy: &ClickPolicy,
    request: ClickRequest,
    at: DateTime<Utc>,
    url: &str,
    delivered_at: Option<DateTime<Utc>>,
    prior: &[PriorClick],
) -> Judgement {
    let verdict = |verdict| Judgement {
        verdict,
        retract: 0,
    };
    if request.head {
        return verdict(ClickVerdict::Head);
    }
    if request.prefetch {
        return verdict(ClickVerdict::Prefetch);
    }
    if delivered_at.is_some_and(|d| at - d < policy.grace) {
        return verdict(ClickVerdict::WithinGrace);
    }
    let near = |p: &&PriorClick| (at - p.at).abs() <= policy.burst;
    if prior.iter().filter(near).any(|p| p.url != url) {
        // Every click of the burst is the machine's; one counted before we knew is taken back,
        // by the click that showed the burst (later ones find it judged a burst already).
        let retract = if prior.iter().filter(near).any(|p| p.burst) {
            0
        } else {
            prior.iter().filter(near).filter(|p| p.counted).count()
        };
        return Judgement {
            verdict: ClickVerdict::Burst,
            retract,
        };
    }
    if prior
        .iter()
        .any(|p| p.counted && p.url == url && p.at <= at && at - p.at < policy.repeat)
    {
        return verdict(ClickVerdict::Repeat);
    }
    verdict(ClickVerdict::Counted)
}

/// One engagement on a lead's record: `points` of `kind` at `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub points: i64,
    /// What it was (the URL clicked, …), as recorded.
    pub detail: Value,
}

/// `points` earned at `at`, as much as they weigh at `now`: halved every `half_life`
/// (`None`: no decay). A signal from the future weighs in full.
pub fn decayed(
    points: i64,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    half_life: Option<Duration>,
) -> f64 {
    let full = points as f64;
    let Some(half_life) = half_life.filter(|h| *h > Duration::zero()) else {
        return full;
    };
    let age = (now - at).num_milliseconds().max(0) as f64;
    full * 0.5_f64.powf(age / half_life.num_milliseconds() as f64)
}

/// The score at `now`: the sum of every signal's decayed points.
pub fn score(signals: &[Signal], now: DateTime<Utc>, half_life: Option<Duration>) -> f64 {
    signals
        .iter()
        .map(|s| decayed(s.points, s.at, now, half_life))
        .sum()
}

/// A score as a whole number (what `score()` reports and thresholds compare): rounded, so
/// 9.9999 from float sums is 10.
pub fn whole(score: f64) -> i64 {
    score.round() as i64
}

/// The signals that made a score, for the re-warm's event and the owner's notification: each
/// one still weighing something, with its points then and now, newest first.
pub fn made_of(signals: &[Signal], now: DateTime<Utc>, half_life: Option<Duration>) -> Value {
    let mut out: Vec<(DateTime<Utc>, Value)> = signals
        .iter()
        .filter(|s| s.points != 0)
        .map(|s| {
            let weight = decayed(s.points, s.at, now, half_life);
            let mut v = json!({
                "kind": s.kind,
                "at": s.at,
                "points": s.points,
                "weight": (weight * 10.0).round() / 10.0,
            });
            for key in ["url", "campaign", "step", "retracted"] {
                if let Some(x) = s.detail.get(key) {
                    v[key] = x.clone();
                }
            }
            (s.at, v)
        })
        .collect();
    out.sort_by_key(|a| std::cmp::Reverse(a.0));
    Value::Array(out.into_iter().map(|(_, v)| v).collect())
}

/// One line per signal of `made_of`'s list: "2026-03-03 10:00 UTC click +10 (9.8 now) https://…".
pub fn describe(made: &Value) -> Vec<String> {
    let Some(list) = made.as_array() else {
        return Vec::new();
    };
    list.iter()
        .map(|s| {
            let at = s["at"]
                .as_str()
                .and_then(|a| DateTime::parse_from_rfc3339(a).ok())
                .map(|a| {
                    a.with_timezone(&Utc)
                        .format("%Y-%m-%d %H:%M UTC")
                        .to_string()
                })
                .unwrap_or_default();
            let mut line = format!(
                "{at} {} {:+} ({} now)",
                s["kind"].as_str().unwrap_or("engagement"),
                s["points"].as_i64().unwrap_or(0),
                s["weight"].as_f64().unwrap_or(0.0)
            );
            if let Some(url) = s["url"].as_str() {
                line.push(' ');
                line.push_str(url);
            }
            if s.get("retracted").is_some() {
                line.push_str(" (a scanner's burst, taken back)");
            }
            line
        })
        .collect()
}

/// The signals of `engaged` events' details (kind, points) at their times.
pub fn from_engaged(events: impl IntoIterator<Item = (DateTime<Utc>, Value)>) -> Vec<Signal> {
    events
        .into_iter()
        .map(|(at, detail)| Signal {
            at,
            kind: detail["kind"].as_str().unwrap_or("engagement").to_string(),
            points: detail["points"].as_i64().unwrap_or(0),
            detail,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    const SENT: &str = "2026-03-02T10:00:00Z";

    fn prior(at: &str, url: &str, counted: bool) -> PriorClick {
        PriorClick {
            at: t(at),
            url: url.into(),
            counted,
            burst: false,
        }
    }

    fn judge(at: &str, url: &str, request: ClickRequest, prior: &[PriorClick]) -> Judgement {
        judge_click(
            &ClickPolicy::default(),
            request,
            t(at),
            url,
            Some(t(SENT)),
            prior,
        )
    }

    fn get() -> ClickRequest {
        ClickRequest::default()
    }

    #[test]
    fn a_lone_get_an_hour_after_delivery_counts() {
        let j = judge("2026-03-02T11:00:00Z", "https://a/", get(), &[]);
        assert_eq!(
            j,
            Judgement {
                verdict: ClickVerdict::Counted,
                retract: 0
            }
        );
    }

    #[test]
    fn clicks_within_the_grace_period_are_a_scanners() {
        for at in [
            "2026-03-02T10:00:00Z",
            "2026-03-02T10:00:05Z",
            "2026-03-02T10:00:59.999Z",
        ] {
            assert_eq!(
                judge(at, "https://a/", get(), &[]).verdict,
                ClickVerdict::WithinGrace,
                "{at}"
            );
        }
        assert_eq!(
            judge("2026-03-02T10:01:00Z", "https://a/", get(), &[]).verdict,
            ClickVerdict::Counted
        );
    }

    #[test]
    fn an_unknown_delivery_time_has_no_grace() {
        let j = judge_click(
            &ClickPolicy::default(),
            get(),
            t(SENT),
            "https://a/",
            None,
            &[],
        );
        assert_eq!(j.verdict, ClickVerdict::Counted);
    }

    #[test]
    fn head_and_prefetch_requests_never_count_even_much_later() {
        let later = "2026-03-09T10:00:00Z";
        let head = ClickRequest::from_parts("HEAD", []);
        assert_eq!(
            judge(later, "https://a/", head, &[]).verdict,
            ClickVerdict::Head
        );
        for (name, value) in [
            ("Purpose", "prefetch"),
            ("purpose", "Prefetch"),
            ("Sec-Purpose", "prefetch;prerender"),
            ("sec-purpose", "prefetch"),
            ("X-Moz", "prefetch"),
            ("X-Purpose", "preview"),
        ] {
            let r = ClickRequest::from_parts("GET", [(name, value)]);
            assert_eq!(
                judge(later, "https://a/", r, &[]).verdict,
                ClickVerdict::Prefetch,
                "{name}: {value}"
            );
        }
        let plain = ClickRequest::from_parts("GET", [("Accept", "text/html"), ("Purpose", "")]);
        assert_eq!(plain, ClickRequest::default());
    }

    #[test]
    fn a_second_click_on_one_link_the_same_day_is_a_repeat() {
        let first = prior("2026-03-03T09:00:00Z", "https://a/", true);
        for at in [
            "2026-03-03T09:00:30Z",
            "2026-03-03T18:00:00Z",
            "2026-03-04T08:59:59Z",
        ] {
            assert_eq!(
                judge(at, "https://a/", get(), std::slice::from_ref(&first)).verdict,
                ClickVerdict::Repeat,
                "{at}"
            );
        }
        assert_eq!(
            judge("2026-03-04T09:00:00Z", "https://a/", get(), &[first]).verdict,
            ClickVerdict::Counted
        );
        // A scanner's fetch earlier that day is no reason not to count a person's click.
        let scanner = prior("2026-03-03T09:00:00Z", "https://a/", false);
        assert_eq!(
            judge("2026-03-03T11:00:00Z", "https://a/", get(), &[scanner]).verdict,
            ClickVerdict::Counted
        );
    }

    #[test]
    fn four_gets_of_one_link_in_a_second_count_once() {
        let mut seen: Vec<PriorClick> = Vec::new();
        let mut counted = 0;
        for ms in [0, 250, 500, 750] {
            let at = t("2026-03-05T12:00:00Z") + Duration::milliseconds(ms);
            let j = judge_click(
                &ClickPolicy::default(),
                get(),
                at,
                "https://a/",
                Some(t(SENT)),
                &seen,
            );
            counted += usize::from(j.verdict.counted());
            seen.push(PriorClick {
                at,
                url: "https://a/".into(),
                counted: j.verdict.counted(),
                burst: false,
            });
        }
        assert_eq!(counted, 1);
    }

    #[test]
    fn a_burst_across_links_is_one_machine_signal_and_takes_back_its_first_click() {
        let first = prior("2026-03-05T12:00:00Z", "https://a/", true);
        let j = judge(
            "2026-03-05T12:00:02Z",
            "https://b/",
            get(),
            std::slice::from_ref(&first),
        );
        assert_eq!(
            j,
            Judgement {
                verdict: ClickVerdict::Burst,
                retract: 1
            }
        );
        // The third click of the burst takes back nothing more: the second, judged a burst,
        // took the first back already.
        let second = PriorClick {
            burst: true,
            ..prior("2026-03-05T12:00:02Z", "https://b/", false)
        };
        let j = judge(
            "2026-03-05T12:00:03Z",
            "https://c/",
            get(),
            &[first.clone(), second],
        );
        assert_eq!(
            j,
            Judgement {
                verdict: ClickVerdict::Burst,
                retract: 0
            }
        );
        // A scanner already judged as one: nothing counted to take back.
        let uncounted = prior("2026-03-05T12:00:00Z", "https://a/", false);
        let j = judge("2026-03-05T12:00:02Z", "https://b/", get(), &[uncounted]);
        assert_eq!(
            j,
            Judgement {
                verdict: ClickVerdict::Burst,
                retract: 0
            }
        );
    }

    #[test]
    fn clicks_on_two_links_minutes_apart_both_count() {
        let first = prior("2026-03-05T12:00:00Z", "https://a/", true);
        let j = judge("2026-03-05T12:03:00Z", "https://b/", get(), &[first]);
        assert_eq!(j.verdict, ClickVerdict::Counted);
    }

    #[test]
    fn the_burst_window_edge_is_inclusive() {
        let first = prior("2026-03-05T12:00:00Z", "https://a/", true);
        assert_eq!(
            judge(
                "2026-03-05T12:00:10Z",
                "https://b/",
                get(),
                std::slice::from_ref(&first)
            )
            .verdict,
            ClickVerdict::Burst
        );
        assert_eq!(
            judge("2026-03-05T12:00:10.001Z", "https://b/", get(), &[first]).verdict,
            ClickVerdict::Counted
        );
    }

    #[test]
    fn points_halve_every_half_life() {
        let at = t("2026-01-01T00:00:00Z");
        let h = Some(Duration::days(30));
        assert_eq!(decayed(100, at, at, h), 100.0);
        assert!((decayed(100, at, at + Duration::days(30), h) - 50.0).abs() < 1e-9);
        assert!((decayed(100, at, at + Duration::days(60), h) - 25.0).abs() < 1e-9);
        assert!((decayed(80, at, at + Duration::days(15), h) - 80.0 / 2f64.sqrt()).abs() < 1e-9);
        assert_eq!(decayed(100, at, at + Duration::days(3650), None), 100.0);
        assert_eq!(
            decayed(100, at, at + Duration::days(30), Some(Duration::zero())),
            100.0
        );
        assert_eq!(
            decayed(100, at + Duration::days(1), at, h),
            100.0,
            "a future signal weighs in full"
        );
        assert!((decayed(-10, at, at + Duration::days(30), h) + 5.0).abs() < 1e-9);
    }

    fn signal(at: &str, kind: &str, points: i64) -> Signal {
        Signal {
            at: t(at),
            kind: kind.into(),
            points,
            detail: json!({"kind": kind, "points": points}),
        }
    }

    #[test]
    fn old_interest_does_not_add_up_with_new_to_a_rewarm() {
        let signals = vec![
            signal("2025-06-01T00:00:00Z", "click", 90),
            signal("2026-03-01T00:00:00Z", "click", 10),
        ];
        let now = t("2026-03-01T00:00:00Z");
        assert_eq!(whole(score(&signals, now, None)), 100);
        assert!(whole(score(&signals, now, Some(Duration::days(30)))) < 12);
    }

    #[test]
    fn whole_scores_round_float_sums() {
        assert_eq!(whole(9.999_999), 10);
        assert_eq!(whole(89.5), 90);
        assert_eq!(whole(-0.2), 0);
    }

    #[test]
    fn a_rewarm_names_its_signals_newest_first_with_their_weight() {
        let mut click = signal("2026-03-01T00:00:00Z", "click", 10);
        click.detail["url"] = json!("https://a/");
        let signals = vec![
            signal("2026-02-01T00:00:00Z", "reply", 100),
            click,
            signal("2026-02-15T00:00:00Z", "click", 0),
        ];
        let made = made_of(
            &signals,
            t("2026-03-03T00:00:00Z"),
            Some(Duration::days(30)),
        );
        let made = made.as_array().expect("an array");
        assert_eq!(made.len(), 2, "zero points made nothing");
        assert_eq!(made[0]["kind"], "click");
        assert_eq!(made[0]["url"], "https://a/");
        assert_eq!(made[0]["points"], 10);
        assert_eq!(made[1]["kind"], "reply");
        assert_eq!(made[1]["weight"], 50.0);
    }

    #[test]
    fn described_signals_read_as_one_line_each() {
        let mut click = signal("2026-03-01T10:00:00Z", "click", 10);
        click.detail["url"] = json!("https://a/");
        let made = made_of(&[click], t("2026-03-01T10:00:00Z"), None);
        assert_eq!(
            describe(&made),
            vec!["2026-03-01 10:00 UTC click +10 (10 now) https://a/".to_string()]
        );
        assert!(describe(&json!(null)).is_empty());
    }

    #[test]
    fn engaged_details_become_signals() {
        let s = from_engaged([
            (t(SENT), json!({"kind": "click", "points": 10, "score": 10})),
            (t(SENT), json!({})),
        ]);
        assert_eq!(s[0].kind, "click");
        assert_eq!(s[0].points, 10);
        assert_eq!(s[1].points, 0);
    }
}
