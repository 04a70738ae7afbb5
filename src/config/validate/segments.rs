//! `[[segments]]`: which leads each campaign takes; checked against the campaigns defined.

use std::collections::BTreeMap;

use crate::config::raw::{OneOrMany, RawSegment};
use crate::config::{Campaign, Problems};
use crate::domain::cadence::Span;
use crate::domain::segment::{OnChange, Segment};

pub(super) fn segments(
    raw: Vec<RawSegment>,
    campaigns: &BTreeMap<String, Campaign>,
    p: &mut Problems,
) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, s) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("segments[{i}].{k} ({})", s.name);
        if !seen.insert(s.name.clone()) {
            p.err(
                &key("name"),
                format!("segment `{}` is defined twice", s.name),
            );
        }
        if !campaigns.contains_key(&s.campaign) {
            let known: Vec<_> = campaigns.keys().cloned().collect();
            p.err(
                &key("campaign"),
                format!(
                    "campaign `{}` is not defined (defined: {})",
                    s.campaign,
                    known.join(", ")
                ),
            );
        }
        let span = |k: &str, v: &Option<String>, p: &mut Problems| {
            v.as_deref().and_then(|v| match Span::parse(v) {
                Ok(span) => Some(span),
                Err(e) => {
                    p.err(&key(k), e.to_string());
                    None
                }
            })
        };
        let mut intents = BTreeMap::new();
        for (name, effect) in &s.intents {
            match super::intents::intent_and_effect(name, effect) {
                Ok((i, e)) => {
                    intents.insert(i, e);
                }
                Err(e) => p.err(&key(&format!("intents.{name}")), e),
            }
        }
        let min_age = span("min_age", &s.min_age, p);
        let max_age = span("max_age", &s.max_age, p);
        let on_change = match s.on_change.as_deref() {
            None => OnChange::default(),
            Some(v) => OnChange::parse(v).unwrap_or_else(|| {
                p.err(
                    &key("on_change"),
                    format!("`{v}` is not a rule for changed leads (stay or move)"),
                );
                OnChange::default()
            }),
        };
        segments.push(Segment {
            name: s.name.clone(),
            campaign: s.campaign.clone(),
            lost_reasons: s.lost_reason.map(OneOrMany::into_vec).unwrap_or_default(),
            min_age,
            max_age,
            tags: s.tags.map(OneOrMany::into_vec).unwrap_or_default(),
            owners: s.owner.map(OneOrMany::into_vec).unwrap_or_default(),
            fields: s.fields,
            rewarm_score: s.rewarm_score.unwrap_or(100),
            intents,
            on_change,
        });
    }
    if segments.is_empty() {
        p.err(
            "segments",
            "no segment is defined: no lead would ever be enrolled".into(),
        );
    }
    segments
}
