//! What `rewarm report` shows, from the counts the store aggregates in SQL: a funnel per
//! group, and how long after the loss the leads that came back came back.
//!
//! **Who is counted.** The cohort is the enrolments made in `[since, until)`; a lead counts
//! once per group. A stage counts a lead when it happened between its enrolment and its next
//! enrolment (or `until`), so a lead that flows from one campaign into the next is credited
//! to the campaign it was in at the time:
//!
//! | stage | what in the event log / tables |
//! |---|---|
//! | enrolled | the enrolment |
//! | emailed | a delivery of that enrolment `sent` |
//! | replied | a `replied` event (a person's reply) |
//! | rewarmed | a `rewarmed` event (a reply or a score) |
//! | won | a `won` event |
//! | out_of_scope | an `out_of_scope` event |
//! | unsubscribed | a `suppressed` event with reason `unsubscribed` or `complaint` |
//! | bounced | a `suppressed` event with reason `hard_bounce` |
//!
//! **Loss to re-warm:** for each lead counted `rewarmed` that has a `lost_at`, the days from
//! the loss to its first re-warm in that time; the median, and a histogram by whole months
//! since the loss (a month is 30.44 days: 365.25 / 12).
//!
//! **Replies by intent:** the `replied` events in the same windows (every reply, not distinct
//! leads), by the intent read on each (`interested`, `question`, `later`, `not_interested`,
//! `left_company`, `wrong_person`, `unclear`; [`UNREAD`] for a reply recorded without one).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// How rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    Campaign,
    Segment,
    Owner,
    /// The month of the enrolment (UTC).
    Month,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Campaign => "campaign",
            GroupBy::Segment => "segment",
            GroupBy::Owner => "owner",
            GroupBy::Month => "month",
        }
    }
}

/// The group name of the totals row.
pub const ALL: &str = "(all)";
/// The group of leads without an owner (`--by owner`).
pub const NO_OWNER: &str = "(no owner)";
/// The intent of a reply recorded without one (before intents were read).
pub const UNREAD: &str = "unread";

/// The stages, in funnel order (the columns of the text and CSV output).
pub const STAGES: [&str; 8] = [
    "enrolled",
    "emailed",
    "replied",
    "rewarmed",
    "won",
    "out_of_scope",
    "unsubscribed",
    "bounced",
];

/// Leads per stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Funnel {
    pub enrolled: i64,
    pub emailed: i64,
    pub replied: i64,
    pub rewarmed: i64,
    pub won: i64,
    pub out_of_scope: i64,
    pub unsubscribed: i64,
    pub bounced: i64,
}

impl Funnel {
    /// From counts in [`STAGES`] order.
    pub fn from_counts(c: [i64; 8]) -> Funnel {
        Funnel {
            enrolled: c[0],
            emailed: c[1],
            replied: c[2],
            rewarmed: c[3],
            won: c[4],
            out_of_scope: c[5],
            unsubscribed: c[6],
            bounced: c[7],
        }
    }

    /// Counts in [`STAGES`] order.
    pub fn counts(&self) -> [i64; 8] {
        [
            self.enrolled,
            self.emailed,
            self.replied,
            self.rewarmed,
            self.won,
            self.out_of_scope,
            self.unsubscribed,
            self.bounced,
        ]
    }
}

/// How long after the loss the re-warmed leads came back.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LossToRewarm {
    /// Re-warmed leads with a known loss date.
    pub leads: i64,
    pub median_days: Option<f64>,
    /// Leads per whole months since the loss (0 = within the first month).
    pub by_months: BTreeMap<i64, i64>,
}

/// Days in an average month.
pub const DAYS_PER_MONTH: f64 = 365.25 / 12.0;

impl LossToRewarm {
    /// From (days since the loss, leads) pairs.
    pub fn from_days(days: &[(i64, i64)]) -> LossToRewarm {
        let mut sorted: Vec<(i64, i64)> = days.iter().copied().filter(|(_, n)| *n > 0).collect();
        sorted.sort_unstable();
        let leads: i64 = sorted.iter().map(|(_, n)| n).sum();
        let mut by_months = BTreeMap::new();
        for (d, n) in &sorted {
            let month = (*d as f64 / DAYS_PER_MONTH).floor() as i64;
            *by_months.entry(month).or_insert(0) += n;
        }
        LossToRewarm {
            leads,
            median_days: median(&sorted),
            by_months,
        }
    }

    /// The median in months (30.44 days each), to one decimal.
    pub fn median_months(&self) -> Option<f64> {
        self.median_days
            .map(|d| (d / DAYS_PER_MONTH * 10.0).round() / 10.0)
    }
}

/// The median of a sorted histogram of (value, count); the mean of the two middle values
/// when the count is even.
pub fn median(sorted: &[(i64, i64)]) -> Option<f64> {
    let total: i64 = sorted.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let nth = |k: i64| {
        let mut seen = 0;
        for (v, n) in sorted {
            seen += n;
            if k < seen {
                return *v;
            }
        }
        sorted.last().map(|(v, _)| *v).unwrap_or(0)
    };
    let (a, b) = (nth((total - 1) / 2), nth(total / 2));
    Some((a + b) as f64 / 2.0)
}

/// One group's row.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GroupReport {
    pub group: String,
    pub funnel: Funnel,
    pub loss_to_rewarm: LossToRewarm,
    /// Replies per intent (only intents with replies).
    pub replies_by_intent: BTreeMap<String, i64>,
}

/// `intent:replies` pairs in the intents' own order (then unread, then any other name).
fn intents_line(h: &BTreeMap<String, i64>, sep: &str) -> String {
    let rank = |name: &str| {
        crate::domain::intent::Intent::ALL
            .iter()
            .position(|i| i.as_str() == name)
            .unwrap_or(if name == UNREAD { 7 } else { 8 })
    };
    let mut pairs: Vec<(&String, &i64)> = h.iter().collect();
    pairs.sort_by_key(|(name, _)| (rank(name), name.to_string()));
    pairs
        .iter()
        .map(|(name, n)| format!("{name}:{n}"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    pub since: Option<DateTime<Utc>>,
    pub until: DateTime<Utc>,
    pub by: &'static str,
    pub groups: Vec<GroupReport>,
    pub total: GroupReport,
}

/// Assembles the report from the store's aggregates: funnel rows (group, counts),
/// loss-to-re-warm rows (group, days, leads) and reply rows (group, intent, replies); the
/// totals' group is [`ALL`].
pub fn assemble(
    since: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
    by: GroupBy,
    funnels: Vec<(String, [i64; 8])>,
    days: Vec<(String, i64, i64)>,
    intents: Vec<(String, String, i64)>,
) -> Report {
    let mut per_group: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (group, d, n) in days {
        per_group.entry(group).or_default().push((d, n));
    }
    let mut replies: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (group, intent, n) in intents.into_iter().filter(|(_, _, n)| *n > 0) {
        *replies.entry(group).or_default().entry(intent).or_insert(0) += n;
    }
    let mut total = None;
    let mut groups = Vec::new();
    for (group, counts) in funnels {
        let loss = LossToRewarm::from_days(per_group.get(&group).map_or(&[][..], |v| &v[..]));
        let row = GroupReport {
            funnel: Funnel::from_counts(counts),
            loss_to_rewarm: loss,
            replies_by_intent: replies.remove(&group).unwrap_or_default(),
            group,
        };
        if row.group == ALL {
            total = Some(row);
        } else {
            groups.push(row);
        }
    }
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    Report {
        since,
        until,
        by: by.as_str(),
        groups,
        total: total.unwrap_or_else(|| GroupReport {
            group: ALL.into(),
            funnel: Funnel::default(),
            loss_to_rewarm: LossToRewarm::default(),
            replies_by_intent: BTreeMap::new(),
        }),
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v}")).unwrap_or_else(|| "-".into())
}

fn histogram(h: &BTreeMap<i64, i64>, sep: &str) -> String {
    h.iter()
        .map(|(m, n)| format!("{m}:{n}"))
        .collect::<Vec<_>>()
        .join(sep)
}

impl Report {
    fn rows(&self) -> impl Iterator<Item = &GroupReport> {
        self.groups.iter().chain(std::iter::once(&self.total))
    }

    /// The text table: one row per group and the totals, then the histograms.
    pub fn text(&self) -> String {
        let since = self
            .since
            .map(|s| s.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "the beginning".into());
        let mut t = format!(
            "Leads enrolled from {since} until {}, by {}\n\n",
            self.until.format("%Y-%m-%d %H:%M UTC"),
            self.by
        );
        let width = self
            .rows()
            .map(|r| r.group.len())
            .max()
            .unwrap_or(0)
            .max(self.by.len());
        t.push_str(&format!("{:<width$}", self.by));
        for s in STAGES {
            t.push_str(&format!("  {s:>w$}", w = s.len().max(6)));
        }
        t.push_str("  median months loss→re-warm\n");
        for r in self.rows() {
            t.push_str(&format!("{:<width$}", r.group));
            for (s, n) in STAGES.iter().zip(r.funnel.counts()) {
                t.push_str(&format!("  {n:>w$}", w = s.len().max(6)));
            }
            t.push_str(&format!(
                "  {}\n",
                fmt_opt(r.loss_to_rewarm.median_months())
            ));
        }
        t.push_str("\nRe-warmed leads by months since the loss (months:leads)\n");
        for r in self.rows() {
            let h = histogram(&r.loss_to_rewarm.by_months, "  ");
            t.push_str(&format!(
                "{:<width$}  {}\n",
                r.group,
                if h.is_empty() { "-".into() } else { h }
            ));
        }
        t.push_str("\nReplies by intent (intent:replies)\n");
        for r in self.rows() {
            let h = intents_line(&r.replies_by_intent, "  ");
            t.push_str(&format!(
                "{:<width$}  {}\n",
                r.group,
                if h.is_empty() { "-".into() } else { h }
            ));
        }
        t
    }

    /// CSV: a header, one line per group and the totals.
    pub fn csv(&self) -> String {
        let mut t = format!(
            "{},{},rewarmed_with_loss_date,median_days_loss_to_rewarm,median_months_loss_to_rewarm,rewarmed_by_months_since_loss,replies_by_intent\n",
            self.by,
            STAGES.join(",")
        );
        for r in self.rows() {
            let counts: Vec<String> = r.funnel.counts().iter().map(i64::to_string).collect();
            let l = &r.loss_to_rewarm;
            t.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                csv_field(&r.group),
                counts.join(","),
                l.leads,
                l.median_days.map(|d| d.to_string()).unwrap_or_default(),
                l.median_months().map(|d| d.to_string()).unwrap_or_default(),
                histogram(&l.by_months, " "),
                intents_line(&r.replies_by_intent, " ")
            ));
        }
        t
    }
}

/// A CSV field, quoted when it must be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn the_median_of_a_histogram() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[(5, 1)]), Some(5.0));
        assert_eq!(median(&[(1, 1), (9, 1)]), Some(5.0));
        assert_eq!(median(&[(1, 2), (9, 1)]), Some(1.0));
        assert_eq!(median(&[(1, 1), (4, 2), (100, 1)]), Some(4.0));
        assert_eq!(median(&[(10, 3), (20, 3)]), Some(15.0));
    }

    #[test]
    fn days_since_loss_fall_into_whole_months() {
        let l = LossToRewarm::from_days(&[(0, 1), (30, 1), (31, 2), (182, 1), (183, 1), (0, 0)]);
        assert_eq!(l.leads, 6);
        assert_eq!(
            l.by_months,
            BTreeMap::from([(0, 2), (1, 2), (5, 1), (6, 1)])
        );
        assert_eq!(l.median_days, Some(31.0));
        assert_eq!(l.median_months(), Some(1.0));
        assert_eq!(LossToRewarm::from_days(&[]).median_months(), None);
    }

    fn counts(n: i64) -> [i64; 8] {
        [n, n, 1, 1, 0, 0, 0, 0]
    }

    #[test]
    fn groups_are_sorted_and_the_total_is_apart() {
        let r = assemble(
            None,
            t("2026-12-01T00:00:00Z"),
            GroupBy::Campaign,
            vec![
                ("b".into(), counts(2)),
                (ALL.into(), counts(5)),
                ("a".into(), counts(3)),
            ],
            vec![("a".into(), 200, 1), (ALL.into(), 200, 1)],
            vec![
                ("a".into(), "later".into(), 2),
                ("a".into(), "interested".into(), 1),
                ("a".into(), "zzz".into(), 0),
                (ALL.into(), "later".into(), 2),
                (ALL.into(), UNREAD.into(), 4),
                (ALL.into(), "interested".into(), 1),
            ],
        );
        assert_eq!(
            r.groups
                .iter()
                .map(|g| g.group.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(r.total.funnel.enrolled, 5);
        assert_eq!(
            r.groups[0].loss_to_rewarm.by_months,
            BTreeMap::from([(6, 1)])
        );
        assert_eq!(r.groups[1].loss_to_rewarm.leads, 0);
        assert_eq!(
            r.groups[0].replies_by_intent,
            BTreeMap::from([("interested".into(), 1), ("later".into(), 2)])
        );
        assert!(r.groups[1].replies_by_intent.is_empty());
        let text = r.text();
        assert!(
            text.ends_with(
                "Replies by intent (intent:replies)\n\
                 a         interested:1  later:2\n\
                 b         -\n\
                 (all)     interested:1  later:2  unread:4\n"
            ),
            "{text}"
        );
        let csv = r.csv();
        assert!(
            csv.lines()
                .next()
                .is_some_and(|h| h.ends_with(",replies_by_intent"))
        );
        assert!(
            csv.contains("\n(all),5,5,1,1,0,0,0,0,1,200,6.6,6:1,interested:1 later:2 unread:4\n"),
            "{csv}"
        );
    }

    #[test]
    fn an_empty_report_still_has_its_totals() {
        let r = assemble(
            None,
            t("2026-12-01T00:00:00Z"),
            GroupBy::Owner,
            vec![],
            vec![],
            vec![],
        );
        assert!(r.groups.is_empty());
        assert_eq!(r.total.funnel, Funnel::default());
        assert!(r.text().contains("(all)"));
        assert_eq!(r.csv().lines().count(), 2);
    }

    #[test]
    fn csv_quotes_what_it_must() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn funnel_counts_round_trip_in_stage_order() {
        let c = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(Funnel::from_counts(c).counts(), c);
        assert_eq!(Funnel::from_counts(c).won, 5);
    }
}
