//! `[campaigns.NAME]`: each campaign's cadence (first touch, rhythm, send window) and its
//! templates.

use std::collections::BTreeMap;

use crate::config::raw::{OneOrMany, RawCampaign};
use crate::config::{Campaign, Problems};
use crate::domain::cadence::{Cadence, CronSpec, Rhythm, SendWindow, Span};

pub(super) fn campaigns(
    raw: BTreeMap<String, RawCampaign>,
    p: &mut Problems,
) -> BTreeMap<String, Campaign> {
    let mut campaigns = BTreeMap::new();
    for (name, c) in raw {
        let key = |k: &str| format!("campaigns.{name}.{k}");
        let first_after = Span::parse(&c.first_after).unwrap_or_else(|e| {
            p.err(&key("first_after"), e.to_string());
            Span::Days(0)
        });
        let rhythm = match (c.every, c.cron) {
            (Some(every), None) => Rhythm::Every(match Span::parse(&every) {
                // A zero rhythm would send every remaining step at once.
                Ok(span) if span.is_zero() => {
                    p.err(&key("every"), format!("`{every}` must be longer than zero"));
                    Span::Days(30)
                }
                Ok(span) => span,
                Err(e) => {
                    p.err(&key("every"), e.to_string());
                    Span::Days(30)
                }
            }),
            (None, Some(cron)) => match CronSpec::parse(&cron) {
                Ok(spec) => Rhythm::Cron(spec),
                Err(e) => {
                    p.err(&key("cron"), e.to_string());
                    Rhythm::Every(Span::Days(30))
                }
            },
            (Some(_), Some(_)) => {
                p.err(
                    &key("cron"),
                    "set either `every` or `cron`, not both".into(),
                );
                Rhythm::Every(Span::Days(30))
            }
            (None, None) if c.max_touches > 1 => {
                p.err(
                    &key("every"),
                    "missing: set `every` (e.g. \"30d\") or `cron` (e.g. \"0 10 1 * *\")".into(),
                );
                Rhythm::Every(Span::Days(30))
            }
            (None, None) => Rhythm::Every(Span::Days(30)),
        };
        if c.max_touches == 0 {
            p.err(&key("max_touches"), "must be at least 1".into());
        }
        let window = match c.send_window {
            None => SendWindow::office_hours(),
            Some(w) => SendWindow::parse(&w.days, &w.hours).unwrap_or_else(|e| {
                p.err(&key("send_window"), e.to_string());
                SendWindow::office_hours()
            }),
        };
        let templates = c
            .templates
            .map(OneOrMany::into_vec)
            .unwrap_or_else(|| vec![name.clone()]);
        if templates.is_empty() {
            p.err(&key("templates"), "list at least one template".into());
        }
        let cadence = Cadence {
            first_after,
            rhythm,
            max_touches: c.max_touches.max(1),
            window,
        };
        campaigns.insert(
            name.clone(),
            Campaign {
                name,
                cadence,
                templates,
                track_clicks: c.track_clicks,
            },
        );
    }
    campaigns
}
