//! One inbound message, from raw bytes to its effect — the single path IMAP, the webhooks
//! and `rewarm inbound replay` share: parse → match (see [`super::matching`]) → classify →
//! intent (human replies only, [`super::intent`]) → return date (auto-replies only) → effect ([`super::effect`]) → `Store::record_inbound`
//! (one transaction; a dedupe key seen before changes nothing). Unparseable or unmatched mail
//! is still recorded (as `other` / without a lead): nothing is dropped.
//!
//! Each message is handled inside an `inbound` tracing span (source, channel key, Message-ID,
//! lead), so every line logged about it — here, in matching, in the store — says which.

use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::Instrument as _;

use crate::app::Loaded;
use crate::domain::email::EmailAddress;
use crate::domain::reply::Classification;
use crate::inbound::classify::verdict;
use crate::inbound::effect::{Reply, effect_for};
use crate::inbound::intent::{IntentVerdict, intent_of};
use crate::inbound::matching::{self, Match};
use crate::inbound::parse::{Failure, ParsedInbound, Report, parse, stated_return_date};
use crate::store::{Engagement, InboundEffect, InboundRecord, OtherLead, ReplyAction, Store};

/// A raw message as it arrived.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    pub raw: Vec<u8>,
    /// `imap`, `postmark`, `mailgun`, `sendgrid`, `raw`, `replay`.
    pub source: String,
    /// Same message → same key (provider message id, IMAP UIDVALIDITY/UID, Message-ID, file hash…).
    pub dedupe_key: String,
    pub received_at: DateTime<Utc>,
}

/// What `process` found and did.
#[derive(Debug, Clone)]
pub struct Processed {
    pub classification: Classification,
    /// A human reply's intent (None for anything else).
    pub intent: Option<IntentVerdict>,
    pub lead: Option<EmailAddress>,
    pub matched_by: Option<&'static str>,
    /// Further leads a bounce naming several failed recipients acts on (besides `lead`).
    pub others: Vec<EmailAddress>,
    /// None on a dry run.
    pub inbound_id: Option<i64>,
    /// The dedupe key was seen before: nothing changed.
    pub duplicate: bool,
}

/// Evidence for a suppression / soft bounce: the report's per-recipient status lines.
fn report_evidence(parsed: &ParsedInbound) -> serde_json::Value {
    match &parsed.report {
        Some(Report::Delivery(recipients, original)) => json!({
            "report": "delivery-status",
            "original_message_id": original.message_id,
            "recipients": recipients.iter().map(|r| json!({
                "final_recipient": r.final_recipient, "action": r.action,
                "status": r.status, "diagnostic": r.diagnostic,
            })).collect::<Vec<_>>(),
        }),
        Some(Report::Feedback(original)) => json!({
            "report": "feedback-report", "original_message_id": original.message_id,
        }),
        None => json!({}),
    }
}

/// Runs one message through parse → match → classify → effect → record (unless `dry_run`,
/// which reads only).
///
/// Everything logged meanwhile — here, in matching, in the store — is inside one `inbound`
/// span naming the message: its `source`, the channel's `key`, then its `message_id` once
/// parsed and its `lead` once matched.
pub async fn process<S: Store>(
    store: &S,
    loaded: &Loaded,
    msg: &InboundMessage,
    now: DateTime<Utc>,
    dry_run: bool,
) -> anyhow::Result<Processed> {
    let span = tracing::info_span!(
        "inbound",
        source = %msg.source,
        key = %msg.dedupe_key,
        message_id = tracing::field::Empty,
        lead = tracing::field::Empty,
    );
    process_in(store, loaded, msg, now, dry_run, &span)
        .instrument(span.clone())
        .await
}

async fn process_in<S: Store>(
    store: &S,
    loaded: &Loaded,
    msg: &InboundMessage,
    now: DateTime<Utc>,
    dry_run: bool,
    span: &tracing::Span,
) -> anyhow::Result<Processed> {
    let parsed = match parse(&msg.raw) {
        Ok(parsed) => Some(parsed),
        Err(e) => {
            tracing::warn!(dedupe_key = %msg.dedupe_key, error = %e, "Inbound message could not be parsed; kept as `other`");
            None
        }
    };
    let parsed = parsed.as_ref();
    // A hostile id of kilobytes would weigh on every line: only sane ones are named.
    if let Some(id) = parsed
        .and_then(|p| p.message_id.as_deref())
        .filter(|id| id.len() <= 200)
    {
        span.record("message_id", tracing::field::display(id));
    }
    let (classification, found, others) = classify_and_match(store, loaded, msg, parsed).await?;
    if let Some(m) = &found {
        span.record("lead", tracing::field::display(&m.email));
    }
    let intent = parsed
        .filter(|_| classification == Classification::HumanReply)
        .map(|p| read_intent(loaded, p, msg.received_at));
    let mut processed = Processed {
        classification,
        intent: intent.clone(),
        lead: found.as_ref().map(|m| m.email.clone()),
        matched_by: found.as_ref().map(|m| m.matched_by),
        others: others.iter().map(|(m, _)| m.email.clone()).collect(),
        inbound_id: None,
        duplicate: false,
    };
    if dry_run {
        return Ok(processed);
    }

    let record = record_of(msg, parsed, found.as_ref(), classification);
    let effect = match (&found, parsed) {
        (Some(m), Some(p)) => {
            let read = (classification, intent);
            lead_effect(store, loaded, &record, p, m, read, now).await?
        }
        _ => InboundEffect::None,
    };
    let other_effects = match parsed {
        Some(p) => other_effects(store, loaded, &record, p, &others, now).await?,
        None => Vec::new(),
    };
    let applied = store
        .record_inbound_for_all(&record, &effect, &other_effects, now)
        .await?;
    processed.inbound_id = Some(applied.inbound_id);
    processed.duplicate = applied.duplicate;
    if !applied.duplicate {
        crate::metrics::get().reply(classification.as_str());
        // A hard bounce of a notification email: its owner has left.
        if let Some(p) = parsed {
            crate::notify::owners::note_bounce(store, loaded, p, classification, now).await?;
        }
        // Engagement points for the reply (score threshold per segment); only a first recording.
        // A reply that says "later", "no" or "not me" earns none: it must not re-warm by score
        // what its intent kept from sales.
        if let Some(m) = found.as_ref().filter(|_| earns_points(&effect)) {
            score(store, loaded, m, classification, &record.dedupe_key, now).await?;
        }
        for ((m, _), other) in others.iter().zip(&other_effects) {
            let class = Classification::parse(&other.classification).unwrap_or(classification);
            score(store, loaded, m, class, &record.dedupe_key, now).await?;
        }
    }

    tracing::info!(
        source = %msg.source,
        dedupe_key = %record.dedupe_key,
        classification = classification.as_str(),
        intent = processed.intent.as_ref().map(|v| v.intent.as_str()).unwrap_or(""),
        lead = processed.lead.as_ref().map(|e| e.to_string()).unwrap_or_default(),
        matched_by = processed.matched_by.unwrap_or("unmatched"),
        effect = effect.name(),
        inbound_id = applied.inbound_id,
        duplicate = applied.duplicate,
        "Inbound message processed"
    );
    Ok(processed)
}

/// Whether a message with this effect earns its lead engagement points: a reply that says
/// "later", "no" or "not me" earns none (it must not re-warm by score what its intent kept
/// from sales).
pub(crate) fn earns_points(effect: &InboundEffect) -> bool {
    !matches!(effect, InboundEffect::Reply { action, .. }
        if !matches!(action, ReplyAction::Rewarm { .. }))
}

/// What a message is, the lead it matched, and the further leads a bounce naming several
/// failed recipients names (with how each failed). A message unsure between a bounce and a
/// reply is matched to nothing: kept unmatched, for review — no lead, no sales.
async fn classify_and_match<S: Store>(
    store: &S,
    loaded: &Loaded,
    msg: &InboundMessage,
    parsed: Option<&ParsedInbound>,
) -> anyhow::Result<(Classification, Option<Match>, Vec<(Match, Failure)>)> {
    let Some(p) = parsed else {
        return Ok((Classification::Other, None, Vec::new()));
    };
    let decided = verdict(p);
    if decided.for_review() {
        tracing::info!(dedupe_key = %msg.dedupe_key, "Inbound message looks like a bounce but is not clearly one; kept unmatched for review");
        return Ok((decided.classification, None, Vec::new()));
    }
    let found = matching::find(store, &loaded.keys, p).await?;
    let others = match &found {
        Some(m)
            if matches!(
                decided.classification,
                Classification::HardBounce | Classification::SoftBounce
            ) =>
        {
            matching::other_failed_leads(store, p, m.lead_id).await?
        }
        _ => Vec::new(),
    };
    Ok((decided.classification, found, others))
}

/// What is stored of the message: everything, the raw bytes included, matched or not.
fn record_of(
    msg: &InboundMessage,
    parsed: Option<&ParsedInbound>,
    found: Option<&Match>,
    classification: Classification,
) -> InboundRecord {
    InboundRecord {
        // One message, one key, whichever way it came: the same reply seen over IMAP and in a
        // replayed export (or from two providers) changes its lead once.
        dedupe_key: dedupe_key(parsed, &msg.dedupe_key),
        source: msg.source.clone(),
        received_at: msg.received_at,
        message_id: parsed.and_then(|p| p.message_id.clone()),
        from_address: parsed.and_then(|p| p.from.clone()),
        subject: parsed.map(|p| p.subject.clone()).filter(|s| !s.is_empty()),
        classification: classification.as_str().to_string(),
        lead_id: found.map(|m| m.lead_id),
        delivery_id: found.and_then(|m| m.delivery_id),
        matched_by: found.map(|m| m.matched_by.to_string()),
        text: parsed.map(|p| p.text.clone()),
        raw: msg.raw.clone(),
    }
}

/// A human reply's intent, from its own text: the sender's address and ours (the reply
/// addresses it was sent to) are no referral; marketing's phrases count first.
pub fn read_intent(
    loaded: &Loaded,
    p: &ParsedInbound,
    received_at: DateTime<Utc>,
) -> IntentVerdict {
    let mut exclude: Vec<&str> = p.recipients.iter().map(String::as_str).collect();
    exclude.extend(p.from.as_deref());
    let received = p.sent_on.unwrap_or(received_at.date_naive());
    intent_of(
        &p.text,
        received,
        &exclude,
        &loaded.settings.intents.phrases,
    )
}

/// What the message does to the lead it matched (nothing when the lead is gone). An
/// auto-reply's return date is read here, after classification: only auto-replies have one.
/// A human reply's effect depends on its intent and the lead's segment (the campaign of the
/// email it answers, else the first segment the lead matches).
pub(crate) async fn lead_effect<S: Store>(
    store: &S,
    loaded: &Loaded,
    record: &InboundRecord,
    parsed: &ParsedInbound,
    m: &Match,
    (classification, intent): (Classification, Option<IntentVerdict>),
    now: DateTime<Utc>,
) -> anyhow::Result<InboundEffect> {
    let Some(lead) = store.leads_by_ids(&[m.lead_id]).await?.into_iter().next() else {
        return Ok(InboundEffect::None);
    };
    let settings = &loaded.settings;
    let (timeline, segment) = if classification == Classification::HumanReply {
        let campaign = match m.delivery_id {
            Some(id) => store.delivery_target(id).await?.map(|t| t.campaign),
            None => None,
        };
        let segment = campaign
            .and_then(|c| settings.segments.iter().find(|s| s.campaign == c))
            .or_else(|| {
                crate::domain::segment::first_match(
                    &settings.segments,
                    &lead,
                    now,
                    settings.default_tz,
                )
            });
        (store.timeline(lead.id).await?, segment)
    } else {
        (Vec::new(), None)
    };
    let reply = Reply {
        dedupe_key: &record.dedupe_key,
        subject: record.subject.as_deref(),
        text: record.text.as_deref().unwrap_or_default(),
        from: record.from_address.as_deref(),
        // A dateless auto-reply counts from the day it came.
        return_date: stated_return_date(parsed, classification, record.received_at.date_naive()),
        received_at: Some(record.received_at),
        evidence: report_evidence(parsed),
        intent,
        segment,
    };
    Ok(effect_for(
        &loaded.settings,
        classification,
        &lead,
        &reply,
        &timeline,
    ))
}

/// What a bounce does to each further lead it names (`others`): a hard or a soft bounce, as
/// that recipient failed.
async fn other_effects<S: Store>(
    store: &S,
    loaded: &Loaded,
    record: &InboundRecord,
    parsed: &ParsedInbound,
    others: &[(Match, Failure)],
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<OtherLead>> {
    let mut out = Vec::with_capacity(others.len());
    for (m, failure) in others {
        let class = match failure {
            Failure::Permanent => Classification::HardBounce,
            Failure::Transient => Classification::SoftBounce,
        };
        out.push(OtherLead {
            lead_id: m.lead_id,
            classification: class.as_str().to_string(),
            effect: lead_effect(store, loaded, record, parsed, m, (class, None), now).await?,
        });
    }
    Ok(out)
}

/// Gives the matched lead the points `[scoring.points]` sets for `classification` (under the
/// campaign of the email it answers, when known).
pub(crate) async fn score<S: Store>(
    store: &S,
    loaded: &Loaded,
    m: &Match,
    classification: Classification,
    key: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let points = loaded
        .settings
        .scoring
        .points_for(classification.score_kind());
    if points == 0 {
        return Ok(());
    }
    let campaign = match m.delivery_id {
        Some(id) => store.delivery_target(id).await?.map(|t| t.campaign),
        None => None,
    };
    engage(
        store,
        loaded,
        m.lead_id,
        campaign.as_deref(),
        classification.as_str(),
        points,
        serde_json::json!({}),
        key,
        now,
    )
    .await?;
    Ok(())
}

/// `message-id:<id>` when the message has a Message-ID, else the channel's own key (IMAP
/// UID, provider id, file hash).
fn dedupe_key(parsed: Option<&ParsedInbound>, channel_key: &str) -> String {
    match parsed.and_then(|p| p.message_id.as_deref()).map(str::trim) {
        // Long ids are hashed: the key is a unique index entry and must stay small.
        Some(id) if id.len() > 200 => {
            format!("message-id:sha256:{}", crate::hex::sha256(id.as_bytes()))
        }
        Some(id) if !id.is_empty() => {
            format!(
                "message-id:{}",
                id.trim_start_matches('<').trim_end_matches('>')
            )
        }
        _ => channel_key.to_string(),
    }
}

/// Adds engagement points to a lead; re-warms it (with notifications) when its segment's
/// `rewarm_score` is crossed. The segment is the one of `campaign` (the campaign of the email
/// engaged with), else the first segment the lead matches. Returns whether the lead re-warmed
/// now.
#[allow(clippy::too_many_arguments)]
pub async fn engage<S: Store>(
    store: &S,
    loaded: &Loaded,
    lead_id: i64,
    campaign: Option<&str>,
    kind: &str,
    points: i64,
    detail: serde_json::Value,
    key: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let Some(lead) = store.leads_by_ids(&[lead_id]).await?.into_iter().next() else {
        return Ok(false);
    };
    let settings = &loaded.settings;
    let segment = campaign
        .and_then(|c| settings.segments.iter().find(|s| s.campaign == c))
        .or_else(|| {
            crate::domain::segment::first_match(&settings.segments, &lead, now, settings.default_tz)
        });
    let threshold = segment.map(|s| s.rewarm_score).unwrap_or(0);
    // Points taken back can cross no threshold: nobody to tell.
    let notifications = if threshold > 0 && points > 0 {
        let timeline = store.timeline(lead_id).await?;
        crate::inbound::effect::score_notifications(
            settings, &lead, kind, threshold, key, &timeline,
        )
    } else {
        Vec::new()
    };
    let engagement = Engagement {
        lead_id,
        kind,
        points,
        threshold,
        half_life: settings.scoring.half_life,
        detail,
    };
    Ok(store.engage(&engagement, &notifications, now).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed_with(message_id: Option<&str>) -> ParsedInbound {
        let raw = match message_id {
            Some(id) => {
                format!("From: a@b.example\r\nMessage-ID: {id}\r\nSubject: hi\r\n\r\nhello\r\n")
            }
            None => "From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n".to_string(),
        };
        parse(raw.as_bytes()).expect("parses")
    }

    #[test]
    fn the_message_id_is_the_key_whatever_the_channel() {
        let p = parsed_with(Some("<abc@mail.example>"));
        assert_eq!(
            dedupe_key(Some(&p), "imap:h:INBOX:1:7"),
            "message-id:abc@mail.example"
        );
        assert_eq!(
            dedupe_key(Some(&p), "replay:sha256:00"),
            dedupe_key(Some(&p), "mailgun:xyz")
        );
    }

    #[test]
    fn without_a_message_id_the_channel_key_stays() {
        let p = parsed_with(None);
        assert_eq!(dedupe_key(Some(&p), "imap:h:INBOX:1:7"), "imap:h:INBOX:1:7");
        assert_eq!(dedupe_key(None, "raw:sha256:ff"), "raw:sha256:ff");
    }

    #[test]
    fn a_huge_message_id_is_hashed_to_a_short_key() {
        let id = format!("<{}@x.example>", "a".repeat(5000));
        let key = dedupe_key(Some(&parsed_with(Some(&id))), "k");
        assert!(
            key.starts_with("message-id:sha256:") && key.len() < 100,
            "{key}"
        );
    }

    /// Captures what a `fmt` subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[tokio::test]
    async fn every_line_about_a_message_names_its_source_key_message_id_and_lead() {
        use crate::domain::lead::NewLead;
        use crate::store::prelude::*;
        use crate::store::sqlite::SqliteStore;

        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::connect(&url).await.expect("open");
        store.migrate().await.expect("migrate");
        let loaded =
            Loaded::load(std::path::Path::new("config/example.toml")).expect("example config");
        let now = DateTime::parse_from_rfc3339("2027-03-01T10:00:00Z")
            .expect("a time")
            .to_utc();
        let lead = NewLead {
            email: Some(EmailAddress::parse("ann@example.com").expect("an address")),
            ..NewLead::default()
        };
        store
            .upsert_leads(&[lead], "test", now)
            .await
            .expect("a lead");

        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let msg = InboundMessage {
            raw: b"From: ann@example.com\r\nMessage-ID: <m1@mail.example>\r\n\
                   Subject: Re: hi\r\n\r\nYes, call me.\r\n"
                .to_vec(),
            source: "replay".into(),
            dedupe_key: "replay:sha256:00".into(),
            received_at: now,
        };
        let processed = process(&store, &loaded, &msg, now, false)
            .await
            .expect("processed");
        assert_eq!(processed.matched_by, Some("sender"));

        let logged = String::from_utf8(captured.0.lock().expect("not poisoned").clone())
            .expect("UTF-8 logs");
        let line = logged
            .lines()
            .find(|l| l.contains("Inbound message processed"))
            .unwrap_or_else(|| panic!("no summary line in {logged:?}"));
        for field in [
            "inbound{",
            "source=replay",
            "key=replay:sha256:00",
            "message_id=m1@mail.example",
            "lead=ann@example.com",
        ] {
            assert!(line.contains(field), "{field} missing from {line:?}");
        }
    }
}
