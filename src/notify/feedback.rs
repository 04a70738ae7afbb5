//! Sales' one-click feedback: signed action links — *I'm on it*, *Won*, *Not now — back to
//! nurture in 3/6/12 months*, *Out of scope* — that the owner's re-warm email carries (and
//! the digest and call tasks, through [`feedback_links`]). `GET /feedback/{token}` shows a
//! confirm page and changes nothing; `POST` acts (`http::feedback`).
//!
//! A token is a `Feedback` token (`tokens.rs`): its id is the lead's, its `extra` packs the
//! action, the months of "not now" and the day it expires ([`VALIDITY_DAYS`] after it was
//! made), and it is signed over the address it was sent to (the lead's owner, or
//! `notify.fallback_email` for a lead without one). So a link works only for that lead,
//! only while that address is still who the lead belongs to, and only until it expires.

use chrono::{DateTime, Utc};

use crate::app::Loaded;
use crate::domain::lead::Lead;
use crate::tokens::{Claims, TokenKeys, TokenKind};

/// How long a feedback link works.
pub const VALIDITY_DAYS: i64 = 30;
/// The "not now" waits offered, in months.
pub const NOT_NOW_MONTHS: [u8; 3] = [3, 6, 12];

/// What sales says with one click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackAction {
    Working,
    Won,
    /// Back to nurture, the next email this many months later.
    NotNow(u8),
    OutOfScope,
}

impl FeedbackAction {
    /// The `feedback` event's `detail.action`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackAction::Working => "working",
            FeedbackAction::Won => "won",
            FeedbackAction::NotNow(_) => "not_now",
            FeedbackAction::OutOfScope => "out_of_scope",
        }
    }

    /// The link's label.
    pub fn label(self) -> String {
        match self {
            FeedbackAction::Working => "I'm on it".into(),
            FeedbackAction::Won => "Won".into(),
            FeedbackAction::NotNow(n) => format!("Not now — back to nurture in {n} months"),
            FeedbackAction::OutOfScope => "Out of scope (give a reason)".into(),
        }
    }

    fn code(self) -> (u8, u8) {
        match self {
            FeedbackAction::Working => (1, 0),
            FeedbackAction::Won => (2, 0),
            FeedbackAction::NotNow(n) => (3, n),
            FeedbackAction::OutOfScope => (4, 0),
        }
    }

    fn from_code(code: u8, months: u8) -> Option<Self> {
        Some(match code {
            1 => FeedbackAction::Working,
            2 => FeedbackAction::Won,
            3 if months > 0 => FeedbackAction::NotNow(months),
            4 => FeedbackAction::OutOfScope,
            _ => return None,
        })
    }

    /// Every action a link is made for, in the order the email lists them.
    pub fn all() -> Vec<FeedbackAction> {
        let mut all = vec![FeedbackAction::Working, FeedbackAction::Won];
        all.extend(NOT_NOW_MONTHS.map(FeedbackAction::NotNow));
        all.push(FeedbackAction::OutOfScope);
        all
    }
}

/// A verified feedback token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    pub lead_id: i64,
    pub action: FeedbackAction,
    pub expires: DateTime<Utc>,
}

/// Why a token does not act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Forged, altered, of another kind, or not signed for this lead's owner.
    Invalid,
    Expired,
}

fn day(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(86_400)
}

/// The token for `action` on `lead`, bound to `owner` (case-insensitive), made at `now`.
pub fn sign(
    keys: &TokenKeys,
    lead_id: i64,
    owner: &str,
    action: FeedbackAction,
    now: DateTime<Utc>,
) -> String {
    let expires = (day(now) + VALIDITY_DAYS).clamp(0, i64::from(u16::MAX)) as u32;
    let (code, months) = action.code();
    let extra = (expires << 16) | (u32::from(code) << 8) | u32::from(months);
    keys.sign_with(
        TokenKind::Feedback,
        lead_id,
        extra,
        owner.trim().to_lowercase().as_bytes(),
    )
}

/// The lead a token names, before it is verified: only to find whom it must be bound to.
pub fn lead_of(keys: &TokenKeys, token: &str) -> Option<i64> {
    keys.unverified_claims(token)
        .filter(|c| c.kind == TokenKind::Feedback)
        .map(|c| c.delivery_id)
}

/// Checks a token's claims (already verified over `owner` by the caller's keys) at `now`.
pub fn check(claims: Option<Claims>, now: DateTime<Utc>) -> Result<Feedback, Rejected> {
    let claims = claims
        .filter(|c| c.kind == TokenKind::Feedback)
        .ok_or(Rejected::Invalid)?;
    let expires_day = i64::from(claims.extra >> 16);
    let code = ((claims.extra >> 8) & 0xff) as u8;
    let months = (claims.extra & 0xff) as u8;
    let action = FeedbackAction::from_code(code, months).ok_or(Rejected::Invalid)?;
    let expires = DateTime::from_timestamp(expires_day * 86_400, 0).ok_or(Rejected::Invalid)?;
    if now >= expires {
        return Err(Rejected::Expired);
    }
    Ok(Feedback {
        lead_id: claims.delivery_id,
        action,
        expires,
    })
}

/// Verifies `token` for the lead's possible recipients (`owners`: its owner, the fallback
/// address) at `now`; `Invalid` unless one of them is the address it was signed for.
pub fn verify(
    keys: &[&TokenKeys],
    token: &str,
    owners: &[String],
    now: DateTime<Utc>,
) -> Result<Feedback, Rejected> {
    let claims = owners.iter().find_map(|owner| {
        let context = owner.trim().to_lowercase();
        keys.iter()
            .find_map(|k| k.verify_with(token, context.as_bytes()))
    });
    check(claims, now)
}

/// The addresses a lead's feedback links may be bound to: its owner, else the fallback.
pub fn recipients(lead: &Lead, fallback: Option<&str>) -> Vec<String> {
    lead.owner_email
        .iter()
        .map(String::as_str)
        .chain(fallback)
        .filter(|o| !o.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The action links for `lead`'s `owner` made at `now`, as (label, URL) in the order to
/// show them: what the re-warm email, the digest and call tasks put in front of sales.
/// While the console is on they point at `/console/feedback/{token}` (a signed-in owner
/// lands on their sales queue, anybody else on `/feedback/{token}`), else at the tokened
/// page itself.
pub fn feedback_links(
    loaded: &Loaded,
    lead: &Lead,
    owner: &str,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let base = loaded.settings.http.public_url.trim_end_matches('/');
    let base = if loaded.settings.console.enabled {
        format!("{base}/console")
    } else {
        base.to_string()
    };
    FeedbackAction::all()
        .into_iter()
        .map(|action| {
            let token = sign(&loaded.keys, lead.id, owner, action, now);
            (action.label(), format!("{base}/feedback/{token}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn keys(id: &str, secret: &str) -> TokenKeys {
        TokenKeys::new(vec![(id.into(), Secret::new(secret.repeat(40)))]).unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_link_works_for_its_lead_action_and_owner_until_it_expires() {
        let k = keys("k1", "a");
        let now = t("2026-03-03T09:00:00Z");
        for action in FeedbackAction::all() {
            let token = sign(&k, 42, "Rep@Seller.example", action, now);
            assert_eq!(lead_of(&k, &token), Some(42));
            let owners = vec!["rep@seller.example".to_string()];
            let f = verify(&[&k], &token, &owners, now + chrono::Duration::days(29)).unwrap();
            assert_eq!((f.lead_id, f.action), (42, action));
            assert_eq!(
                verify(&[&k], &token, &owners, now + chrono::Duration::days(31)),
                Err(Rejected::Expired)
            );
        }
    }

    #[test]
    fn another_owner_another_key_or_an_altered_token_is_refused() {
        let k = keys("k1", "a");
        let now = t("2026-03-03T09:00:00Z");
        let token = sign(&k, 42, "rep@seller.example", FeedbackAction::Won, now);
        let other = vec!["someone@else.example".to_string()];
        assert_eq!(verify(&[&k], &token, &other, now), Err(Rejected::Invalid));
        let forger = keys("k1", "b");
        let forged = sign(&forger, 42, "rep@seller.example", FeedbackAction::Won, now);
        let owners = vec!["rep@seller.example".to_string()];
        assert_eq!(verify(&[&k], &forged, &owners, now), Err(Rejected::Invalid));
        let mut altered = token.clone().into_bytes();
        let i = altered.len() - 3;
        altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(
            verify(&[&k], &altered, &owners, now),
            Err(Rejected::Invalid)
        );
        // An unsubscribe token of the same id is no feedback token.
        let unsubscribe = k.sign_with(TokenKind::Unsubscribe, 42, 0, b"rep@seller.example");
        assert_eq!(
            verify(&[&k], &unsubscribe, &owners, now),
            Err(Rejected::Invalid)
        );
    }

    #[test]
    fn every_action_is_offered_with_its_label() {
        let labels: Vec<String> = FeedbackAction::all()
            .into_iter()
            .map(FeedbackAction::label)
            .collect();
        assert_eq!(
            labels,
            [
                "I'm on it",
                "Won",
                "Not now — back to nurture in 3 months",
                "Not now — back to nurture in 6 months",
                "Not now — back to nurture in 12 months",
                "Out of scope (give a reason)"
            ]
        );
    }
}
