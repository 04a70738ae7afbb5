//! Sign-in links and their email. A link's token is signed with the token keys
//! (`TokenKind::ConsoleSignIn` over the link's random id), so the notification outbox
//! carries only the id and the email is built when it is sent — no usable secret waits in
//! the outbox; the database keeps the token's SHA-256 to find and use it once.
//!
//! [`send_link`] is what both `rewarm console invite` and the sign-in page call; the
//! daemon's notification side task (or the CLI right away) delivers it like an owner email.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::app::Loaded;
use crate::store::{NewNotification, Notification, Store, StoreError};
use crate::tokens::{TokenKeys, TokenKind};
use crate::transport::OutgoingEmail;

/// The outbox kind of a sign-in email.
pub const NOTIFICATION_KIND: &str = "console_signin";

/// A link's token.
fn token(keys: &TokenKeys, link_id: i64) -> String {
    keys.sign(TokenKind::ConsoleSignIn, link_id, 0)
}

/// Creates a single-use sign-in link for `email` (lower case), valid for
/// `console.link_lifetime`, and puts its email in the notification outbox. Returns when the
/// link stops working.
pub async fn send_link<S: Store>(
    store: &S,
    loaded: &Loaded,
    email: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, StoreError> {
    let link_id = i64::try_from(rand::random::<u64>() >> 1).unwrap_or(i64::MAX);
    let lifetime = chrono::Duration::from_std(loaded.settings.console.link_lifetime)
        .unwrap_or(chrono::Duration::minutes(15));
    let expires_at = now + lifetime;
    let hash = super::session::hash(&token(&loaded.keys, link_id));
    store.create_signin(&hash, email, expires_at, now).await?;
    let notification = NewNotification {
        kind: NOTIFICATION_KIND.into(),
        lead_id: None,
        idempotency_key: format!("{NOTIFICATION_KIND}:{link_id}"),
        payload: json!({"to": email, "link_id": link_id, "expires_at": expires_at}),
    };
    store.enqueue_notifications(&[notification], now).await?;
    Ok(expires_at)
}

/// The email of a `console_signin` notification (built when it is sent).
pub fn signin_email(
    loaded: &Loaded,
    n: &Notification,
    now: DateTime<Utc>,
) -> Result<OutgoingEmail, String> {
    let settings = &loaded.settings;
    let to = n.payload["to"]
        .as_str()
        .ok_or("a sign-in notification without `to`")?;
    let link_id = n.payload["link_id"]
        .as_i64()
        .ok_or("a sign-in notification without `link_id`")?;
    let until = n.payload["expires_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            t.with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        })
        .unwrap_or_else(|| "soon".into());
    let url = format!(
        "{}/console/signin/{}",
        settings.http.public_url,
        token(&loaded.keys, link_id)
    );
    let text = format!(
        "Sign in to the rewarm console:\n\n{url}\n\n\
         The link works once, until {until}. If you did not ask for it, ignore this email:\n\
         nobody can sign in without the link.\n"
    );
    let to: lettre::message::Mailbox = to
        .parse()
        .map_err(|e| format!("bad sign-in address `{to}`: {e}"))?;
    let message_id = format!(
        "console-{}-{}@{}",
        n.id,
        now.timestamp(),
        settings.sender.message_id_domain
    );
    let message = lettre::Message::builder()
        .from(settings.sender.from.clone())
        .to(to.clone())
        .subject("Your rewarm console sign-in link")
        .date(now.into())
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(lettre::message::header::HeaderValue::new(
            lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ))
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(text)
        .map_err(|e| format!("cannot build the sign-in email: {e}"))?;
    Ok(OutgoingEmail {
        delivery_id: n.id,
        envelope_from: settings.sender.from.email.to_string(),
        envelope_to: to.email.to_string(),
        message_id,
        bytes: message.formatted(),
    })
}
