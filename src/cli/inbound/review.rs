//! `rewarm inbound list` and `rewarm inbound show ID [--raw]`: the kept messages (matched or
//! not) for review.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use crate::domain::reply::Classification;
use crate::store::{Store, StoredInbound};

/// Which kept messages `list` shows.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    pub unmatched: bool,
    pub class: Option<Classification>,
    /// Received at or after.
    pub since: Option<DateTime<Utc>>,
}

impl Filter {
    fn keeps(&self, m: &StoredInbound) -> bool {
        let r = &m.record;
        !(self.unmatched && r.lead_id.is_some())
            && self.class.is_none_or(|c| r.classification == c.as_str())
            && self.since.is_none_or(|t| r.received_at >= t)
    }
}

/// One line of `list` (a JSON object with `--json`): a kept message without its text and bytes.
#[derive(Debug, serde::Serialize)]
struct Listed {
    id: i64,
    received_at: DateTime<Utc>,
    classification: String,
    /// A human reply's intent (as its effect recorded it; None for anything else).
    intent: Option<String>,
    /// The matched lead's email (None: unmatched).
    lead: Option<String>,
    lead_id: Option<i64>,
    matched_by: Option<String>,
    from: Option<String>,
    subject: Option<String>,
    source: String,
}

/// Messages read per page: `raw` comes with each, so pages stay small.
const PAGE: usize = 100;

/// Subject characters a text line shows.
const SUBJECT_WIDTH: usize = 60;

/// Sender characters a text line shows.
const FROM_WIDTH: usize = 40;

/// Prints the kept messages `filter` keeps, newest first; "N message(s)" on stderr.
pub async fn list<S: Store>(store: &S, filter: &Filter, json: bool) -> anyhow::Result<ExitCode> {
    let listed = listed(store, filter).await?;
    let mut out = std::io::stdout().lock();
    let written = if json {
        listed.iter().try_for_each(|l| {
            let line = serde_json::to_string(l).expect("plain fields serialize");
            writeln!(out, "{line}")
        })
    } else {
        write_table(&mut out, &listed)
    };
    let code = closed_stdout(written.and_then(|()| out.flush()))?;
    if code == ExitCode::SUCCESS {
        eprintln!("{} message(s)", listed.len());
    }
    Ok(code)
}

/// Pages through every kept message (by id) and keeps what `filter` keeps, newest first:
/// only the listed fields stay in memory, never the text or bytes.
async fn listed<S: Store>(store: &S, filter: &Filter) -> anyhow::Result<Vec<Listed>> {
    let mut listed = Vec::new();
    let mut after_id = 0;
    loop {
        let page = store
            .inbound_messages(after_id, PAGE)
            .await
            .context("Failed to read inbound messages")?;
        let Some(last) = page.last() else { break };
        after_id = last.id;
        let full = page.len() == PAGE;
        let kept: Vec<StoredInbound> = page.into_iter().filter(|m| filter.keeps(m)).collect();
        let mut lead_ids: Vec<i64> = kept.iter().filter_map(|m| m.record.lead_id).collect();
        lead_ids.sort_unstable();
        lead_ids.dedup();
        let emails: HashMap<i64, String> = store
            .leads_by_ids(&lead_ids)
            .await
            .context("Failed to read the matched leads")?
            .into_iter()
            .map(|l| (l.id, l.email.to_string()))
            .collect();
        listed.extend(kept.into_iter().map(|m| Listed {
            id: m.id,
            received_at: m.record.received_at,
            classification: m.record.classification,
            intent: intent_of(&m.effects),
            lead: m.record.lead_id.and_then(|id| emails.get(&id).cloned()),
            lead_id: m.record.lead_id,
            matched_by: m.record.matched_by,
            from: m.record.from_address,
            subject: m.record.subject,
            source: m.record.source,
        }));
        if !full {
            break;
        }
    }
    listed.reverse();
    Ok(listed)
}

/// One line per message, columns aligned; sender and subject truncated.
fn write_table(out: &mut impl Write, listed: &[Listed]) -> std::io::Result<()> {
    let rows: Vec<[String; 7]> = listed
        .iter()
        .map(|l| {
            let lead = match (&l.lead, l.lead_id) {
                (Some(email), _) => email.clone(),
                // Matched, but the lead is gone (deleted since).
                (None, Some(id)) => format!("lead #{id}"),
                (None, None) => "-".into(),
            };
            [
                l.id.to_string(),
                l.received_at.format("%Y-%m-%d %H:%MZ").to_string(),
                match &l.intent {
                    Some(intent) => format!("{}/{intent}", l.classification),
                    None => l.classification.clone(),
                },
                lead,
                l.matched_by.clone().unwrap_or_else(|| "-".into()),
                shorten(l.from.as_deref().unwrap_or("-"), FROM_WIDTH),
                shorten(l.subject.as_deref().unwrap_or("-"), SUBJECT_WIDTH),
            ]
        })
        .collect();
    let mut widths = [0; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for [id, at, class, lead, by, from, subject] in &rows {
        writeln!(
            out,
            "{id:>w0$}  {at}  {class:<w2$}  {lead:<w3$}  {by:<w4$}  {from:<w5$}  {subject}",
            w0 = widths[0],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
            w5 = widths[5],
        )?;
    }
    Ok(())
}

/// Prints one kept message: its fields, effects and text, or with `raw` its bytes exactly.
pub async fn show<S: Store>(store: &S, id: i64, raw: bool) -> anyhow::Result<ExitCode> {
    let found = store
        .inbound_messages(id.saturating_sub(1), 1)
        .await
        .context("Failed to read inbound messages")?
        .into_iter()
        .find(|m| m.id == id);
    let Some(m) = found else {
        anyhow::bail!("no inbound message {id} (`rewarm inbound list` shows the ids)");
    };
    let mut out = std::io::stdout().lock();
    if raw {
        return closed_stdout(out.write_all(&m.record.raw).and_then(|()| out.flush()));
    }
    let lead = match m.record.lead_id {
        Some(lead_id) => {
            let email = store
                .leads_by_ids(&[lead_id])
                .await
                .context("Failed to read the matched lead")?
                .into_iter()
                .next()
                .map_or_else(|| "(deleted)".into(), |l| l.email.to_string());
            let delivery = m
                .record
                .delivery_id
                .map(|d| format!(", delivery #{d}"))
                .unwrap_or_default();
            format!(
                "{email} (lead #{lead_id}, matched by {}{delivery})",
                m.record.matched_by.as_deref().unwrap_or("-")
            )
        }
        None => "- (unmatched)".into(),
    };
    closed_stdout(write_record(&mut out, &m, &lead).and_then(|()| out.flush()))
}

fn write_record(out: &mut impl Write, m: &StoredInbound, lead: &str) -> std::io::Result<()> {
    let r = &m.record;
    let opt = |v: &Option<String>| v.as_deref().map_or_else(|| "-".into(), one_line);
    writeln!(out, "inbound message {}", m.id)?;
    writeln!(
        out,
        "  received:        {} via {}",
        r.received_at.format("%Y-%m-%d %H:%M:%SZ"),
        one_line(&r.source)
    )?;
    writeln!(out, "  classification:  {}", r.classification)?;
    if let Some(intent) = intent_of(&m.effects) {
        writeln!(out, "  intent:          {intent}")?;
    }
    writeln!(out, "  lead:            {lead}")?;
    writeln!(out, "  from:            {}", opt(&r.from_address))?;
    writeln!(out, "  subject:         {}", opt(&r.subject))?;
    writeln!(out, "  message-id:      {}", opt(&r.message_id))?;
    writeln!(out, "  dedupe key:      {}", one_line(&r.dedupe_key))?;
    writeln!(out, "  effects:         {}", m.effects)?;
    writeln!(
        out,
        "  raw:             {} bytes (`rewarm inbound show {} --raw > msg.eml`)",
        r.raw.len(),
        m.id
    )?;
    match &r.text {
        Some(text) => {
            writeln!(out, "text:")?;
            for line in text.lines().map(one_line) {
                match line.trim_end() {
                    "" => writeln!(out)?,
                    line => writeln!(out, "  {line}")?,
                }
            }
        }
        None => writeln!(out, "text: - (the message could not be parsed)")?,
    }
    Ok(())
}

/// The intent a human reply's effect recorded (`effects.intent`).
fn intent_of(effects: &serde_json::Value) -> Option<String> {
    effects
        .get("intent")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
}

/// `s` on one line with at most `max` characters ("…" marks a cut).
fn shorten(s: &str, max: usize) -> String {
    let s = one_line(s);
    if s.chars().count() <= max {
        return s;
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `s` with control characters (line breaks, a hostile subject's terminal escapes) as spaces:
/// stored text is what a stranger sent, and it is printed to an operator's terminal.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A write to a closed stdout (`| head` has read enough) ends the command quietly with 141,
/// as the panic hook in [`super::main`] does for `println!`; other write errors are errors.
fn closed_stdout(written: std::io::Result<()>) -> anyhow::Result<ExitCode> {
    match written {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::from(141)),
        Err(e) => Err(anyhow::Error::new(e).context("Failed to write to stdout")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_subject_is_cut_with_an_ellipsis_and_a_short_one_kept() {
        assert_eq!(shorten("Re: hello", 60), "Re: hello");
        let cut = shorten(&"é".repeat(80), 60);
        assert_eq!(cut.chars().count(), 60);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(one_line("a\r\nb\x1b[31mc"), "a  b [31mc");
    }

    /// More messages than a page: every one is read once, the filters apply across pages.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn list_pages_through_every_message_newest_first() {
        use crate::store::sqlite::SqliteStore;
        use crate::store::{InboundEffect, InboundRecord, InboundStore};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        // A fixed moment in whole seconds: the store keeps milliseconds, `since` compares exactly.
        let now = DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let total = 2 * PAGE + 5;
        for i in 0..total {
            let record = InboundRecord {
                dedupe_key: format!("test:{i}"),
                source: "test".into(),
                received_at: now - chrono::Duration::minutes((total - 1 - i) as i64),
                message_id: None,
                from_address: Some("someone@example.com".into()),
                subject: Some(format!("message {i}")),
                classification: if i % 2 == 0 { "other" } else { "hard_bounce" }.into(),
                lead_id: None,
                delivery_id: None,
                matched_by: None,
                text: None,
                raw: b"Subject: x\r\n\r\nx".to_vec(),
            };
            store
                .record_inbound(&record, &InboundEffect::None, now)
                .await
                .unwrap();
        }
        let all = Filter {
            unmatched: true,
            class: None,
            since: None,
        };
        let ids: Vec<i64> = listed(&store, &all)
            .await
            .unwrap()
            .iter()
            .map(|l| l.id)
            .collect();
        let want: Vec<i64> = (1..=total as i64).rev().collect();
        assert_eq!(ids, want);
        let bounces = Filter {
            class: Some(Classification::HardBounce),
            ..all
        };
        assert_eq!(listed(&store, &bounces).await.unwrap().len(), total / 2);
        let recent = Filter {
            since: Some(now - chrono::Duration::minutes(10)),
            ..all
        };
        assert_eq!(listed(&store, &recent).await.unwrap().len(), 11);
    }
}
