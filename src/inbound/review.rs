//! A person's word on a message no lead matched (the console's inbound review): "this
//! belongs to lead X" runs the message through the same steps as [`super::process`] —
//! classification as stored, the intent of a human reply read again from its text, the
//! effect from [`super::effect`], engagement points — with the lead given instead of
//! matched (`matched_by` `review`), and `Store::assign_inbound` applies it exactly as
//! `record_inbound` would have. "Ignore" takes it off the list, kept unmatched.

use chrono::{DateTime, Utc};

use crate::app::Loaded;
use crate::domain::reply::Classification;
use crate::inbound::matching::Match;
use crate::inbound::parse::parse;
use crate::inbound::process::{earns_points, lead_effect, read_intent, score};
use crate::store::{Assigned, InboundEffect, InboundRecord, Store};

/// "This message belongs to lead `lead_id`", said by `by`: applies its effect (see the
/// module docs). Nothing changes unless the message is unmatched and not reviewed yet and
/// the lead exists.
pub async fn belongs_to<S: Store>(
    store: &S,
    loaded: &Loaded,
    inbound_id: i64,
    lead_id: i64,
    by: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Assigned> {
    let Some(stored) = store.inbound_message(inbound_id).await? else {
        return Ok(Assigned::NotForReview);
    };
    if stored.message.record.lead_id.is_some() || stored.reviewed_at.is_some() {
        return Ok(Assigned::NotForReview);
    }
    let Some(lead) = store.leads_by_ids(&[lead_id]).await?.pop() else {
        return Ok(Assigned::NoSuchLead);
    };
    let record = InboundRecord {
        lead_id: Some(lead.id),
        matched_by: Some("review".into()),
        ..stored.message.record
    };
    let classification =
        Classification::parse(&record.classification).unwrap_or(Classification::Other);
    let found = Match {
        lead_id: lead.id,
        email: lead.email.clone(),
        delivery_id: record.delivery_id,
        matched_by: "review",
    };
    let effect = match parse(&record.raw) {
        Ok(p) => {
            let intent = (classification == Classification::HumanReply)
                .then(|| read_intent(loaded, &p, record.received_at));
            lead_effect(
                store,
                loaded,
                &record,
                &p,
                &found,
                (classification, intent),
                now,
            )
            .await?
        }
        Err(_) => InboundEffect::None,
    };
    let assigned = store
        .assign_inbound(inbound_id, lead.id, &effect, by, now)
        .await?;
    if matches!(assigned, Assigned::Applied { .. }) {
        if earns_points(&effect) {
            score(
                store,
                loaded,
                &found,
                classification,
                &record.dedupe_key,
                now,
            )
            .await?;
        }
        tracing::info!(
            inbound_id,
            lead_id = lead.id,
            by,
            effect = effect.name(),
            "Inbound message assigned by review"
        );
    }
    Ok(assigned)
}

/// "Ignore": the message leaves the review list, unmatched; false if it was not on it.
pub async fn ignore<S: Store>(
    store: &S,
    inbound_id: i64,
    by: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let ignored = store.ignore_inbound(inbound_id, by, now).await?;
    if ignored {
        tracing::info!(inbound_id, by, "Inbound message ignored by review");
    }
    Ok(ignored)
}
