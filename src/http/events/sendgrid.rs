//! SendGrid's Event Webhook: a JSON array of events per post, signed with ECDSA (P-256,
//! SHA-256) over the `X-Twilio-Email-Event-Webhook-Timestamp` header followed by the body as
//! received; the base64 DER signature is in `X-Twilio-Email-Event-Webhook-Signature`, the
//! public key (base64 DER SubjectPublicKeyInfo, as SendGrid's settings show it) in
//! `inbound.events.sendgrid_public_key`. Verified with ring (already our TLS provider).
//!
//! | `event`                                   | kind          |
//! |-------------------------------------------|---------------|
//! | `bounce` (`type: bounce`)                 | hard bounce   |
//! | `bounce` (`type: blocked`), `deferred`    | soft bounce   |
//! | `dropped`: "Bounced Address", "Invalid"   | hard bounce   |
//! | `dropped`: "Spam Reporting Address"       | complaint     |
//! | `dropped`: "Unsubscribed Address"         | unsubscribe   |
//! | `dropped`, any other reason               | soft bounce   |
//! | `spamreport`                              | complaint     |
//! | `unsubscribe`, `group_unsubscribe`        | unsubscribe   |
//! | `delivered`                               | delivered     |
//! | `processed`, `open`, `click`, `group_resubscribe` | not kept |
//!
//! The event id is `sg_event_id`; SendGrid's id of the message is `sg_message_id` up to its
//! first dot (the `X-Message-Id` of the send); our token is the custom arg `rewarm_token`.

use axum::http::HeaderMap;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::SendGridKey;
use crate::inbound::events::{EventKind, ProviderEvent};
use crate::transport::api::client::TOKEN_ARG;

pub const SIGNATURE_HEADER: &str = "x-twilio-email-event-webhook-signature";
pub const TIMESTAMP_HEADER: &str = "x-twilio-email-event-webhook-timestamp";

/// How old a signed timestamp may be: SendGrid retries failed posts for up to 24 hours.
const MAX_AGE_SECS: i64 = 25 * 60 * 60;
/// How far ahead of our clock it may be.
const MAX_SKEW_SECS: i64 = 5 * 60;

/// The DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, a 66-byte bit
/// string); the uncompressed point (65 bytes, `04 ‖ X ‖ Y`) follows.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The uncompressed point of a P-256 public key given as SendGrid shows it (base64 of the DER
/// SubjectPublicKeyInfo; PEM armour is accepted too). Err says what is wrong.
pub fn public_key(text: &str) -> Result<Vec<u8>, String> {
    let b64: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| format!("not base64 ({e}): paste the verification key SendGrid shows"))?;
    match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
        // ring checks that the point is on the curve when it verifies.
        Some(point) if point.len() == 65 && point[0] == 0x04 => Ok(point.to_vec()),
        _ => Err("not an ECDSA P-256 public key (DER SubjectPublicKeyInfo)".into()),
    }
}

/// Checks a post's signature and timestamp at `now`; Err says why it is refused.
pub(super) fn verify(
    key: &SendGridKey,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), &'static str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = header(SIGNATURE_HEADER).ok_or("no signature header")?;
    let timestamp = header(TIMESTAMP_HEADER).ok_or("no timestamp header")?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| "the signature is not base64")?;
    let mut signed = Vec::with_capacity(timestamp.len() + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(body);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, &key.0)
        .verify(&signed, &signature)
        .map_err(|_| "the signature does not verify with the configured key")?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| "the timestamp is not a number")?;
    let age = now.timestamp() - ts;
    if !(-MAX_SKEW_SECS..=MAX_AGE_SECS).contains(&age) {
        return Err("the timestamp is too old or in the future");
    }
    Ok(())
}

/// The events of a post worth keeping, in order; Err says what is malformed (nothing of the
/// post is kept then).
pub(super) fn events(body: &[u8]) -> Result<Vec<ProviderEvent>, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the body is not JSON ({e}): SendGrid posts an array of events"))?;
    let Value::Array(items) = v else {
        return Err("the body is not a JSON array: SendGrid posts an array of events".into());
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Some(event) = event(item).map_err(|e| format!("event {i}: {e}"))? {
            out.push(event);
        }
    }
    Ok(out)
}

fn event(item: &Value) -> Result<Option<ProviderEvent>, String> {
    if !item.is_object() {
        return Err("not a JSON object".into());
    }
    let text = |k: &str| {
        item.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let name = text("event").ok_or("no `event`")?;
    let recipient = text("email").ok_or("no `email`")?;
    let reason = text("reason").unwrap_or_default();
    let kind = match name.as_str() {
        "bounce" if text("type").as_deref() == Some("blocked") => EventKind::SoftBounce,
        "bounce" => EventKind::HardBounce,
        "deferred" => EventKind::SoftBounce,
        "dropped" => dropped_kind(&reason),
        "spamreport" => EventKind::Complaint,
        "unsubscribe" | "group_unsubscribe" => EventKind::Unsubscribe,
        "delivered" => EventKind::Delivered,
        "processed" | "open" | "click" | "group_resubscribe" => return Ok(None),
        _ => EventKind::Other,
    };
    let raw = serde_json::to_vec(item).map_err(|e| e.to_string())?;
    let event_id =
        text("sg_event_id").unwrap_or_else(|| format!("sha256:{}", crate::hex::sha256(&raw)));
    let description = [text("reason"), text("status"), text("response")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" — ");
    let name = match text("type") {
        Some(t) => format!("{name}/{t}"),
        None => name,
    };
    Ok(Some(ProviderEvent {
        provider: "sendgrid",
        event_id,
        kind,
        name,
        recipient: Some(recipient),
        provider_message_id: text("sg_message_id")
            .map(|id| id.split('.').next().unwrap_or_default().to_string())
            .filter(|id| !id.is_empty()),
        token: text(TOKEN_ARG),
        description: (!description.is_empty()).then_some(description),
        raw,
    }))
}

/// What a `dropped` event (SendGrid did not send) means, by its reason.
fn dropped_kind(reason: &str) -> EventKind {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("bounced address") || lower.contains("invalid") {
        EventKind::HardBounce
    } else if lower.contains("spam reporting address") {
        EventKind::Complaint
    } else if lower.contains("unsubscribed address") {
        EventKind::Unsubscribe
    } else {
        EventKind::SoftBounce
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    fn key_pair() -> (EcdsaKeyPair, String) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.extend_from_slice(pair.public_key().as_ref());
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        (pair, b64)
    }

    fn signed(pair: &EcdsaKeyPair, ts: &str, body: &[u8]) -> HeaderMap {
        let rng = ring::rand::SystemRandom::new();
        let mut msg = ts.as_bytes().to_vec();
        msg.extend_from_slice(body);
        let sig = pair.sign(&rng, &msg).unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            SIGNATURE_HEADER,
            base64::engine::general_purpose::STANDARD
                .encode(sig.as_ref())
                .parse()
                .unwrap(),
        );
        h.insert(TIMESTAMP_HEADER, ts.parse().unwrap());
        h
    }

    #[test]
    fn only_the_configured_key_over_this_timestamp_and_body_verifies() {
        let (pair, b64) = key_pair();
        let key = SendGridKey(public_key(&b64).unwrap());
        let now = DateTime::from_timestamp(1_772_445_600, 0).unwrap();
        let body = br#"[{"event":"bounce"}]"#;
        let headers = signed(&pair, "1772445600", body);
        assert_eq!(verify(&key, &headers, body, now), Ok(()));
        assert!(verify(&key, &headers, br#"[{"event":"delivered"}]"#, now).is_err());
        let (_, other) = key_pair();
        assert!(
            verify(
                &SendGridKey(public_key(&other).unwrap()),
                &headers,
                body,
                now
            )
            .is_err()
        );
        let mut replaced = headers.clone();
        replaced.insert(TIMESTAMP_HEADER, "1772445601".parse().unwrap());
        assert!(verify(&key, &replaced, body, now).is_err());
        let late = now + chrono::Duration::hours(26);
        assert_eq!(
            verify(&key, &headers, body, late),
            Err("the timestamp is too old or in the future")
        );
        assert!(verify(&key, &HeaderMap::new(), body, now).is_err());
    }

    #[test]
    fn the_key_is_read_from_base64_or_pem_and_anything_else_is_refused() {
        let (_, b64) = key_pair();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n{}\n-----END PUBLIC KEY-----\n",
            &b64[..40],
            &b64[40..]
        );
        assert_eq!(public_key(&pem).unwrap(), public_key(&b64).unwrap());
        assert!(public_key("not base64!").is_err());
        assert!(public_key("aGVsbG8=").is_err());
    }

    #[test]
    fn events_map_to_kinds_and_noise_is_not_kept() {
        let body = json!([
            {"email": "a@x.example", "event": "bounce", "type": "bounce", "sg_event_id": "e1",
             "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0", "reason": "550 5.1.1 unknown",
             "rewarm_token": "tok"},
            {"email": "a@x.example", "event": "bounce", "type": "blocked", "sg_event_id": "e2"},
            {"email": "a@x.example", "event": "dropped", "reason": "Unsubscribed Address", "sg_event_id": "e3"},
            {"email": "a@x.example", "event": "open", "sg_event_id": "e4"},
            {"email": "a@x.example", "event": "delivered", "sg_event_id": "e5"},
            {"email": "a@x.example", "event": "spamreport", "sg_event_id": "e6"}
        ]);
        let e = events(body.to_string().as_bytes()).unwrap();
        let kinds: Vec<EventKind> = e.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::HardBounce,
                EventKind::SoftBounce,
                EventKind::Unsubscribe,
                EventKind::Delivered,
                EventKind::Complaint
            ]
        );
        assert_eq!(e[0].provider_message_id.as_deref(), Some("14c5d75ce93"));
        assert_eq!(e[0].token.as_deref(), Some("tok"));
        assert_eq!(e[0].event_id, "e1");
        let e = events(br#"[{"email":"a@x.example"}]"#).unwrap_err();
        assert!(e.contains("event 0") && e.contains("`event`"), "{e}");
        assert!(events(br#"{"event":"bounce"}"#).is_err());
    }
}
