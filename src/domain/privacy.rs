//! Forgetting a person (`rewarm leads forget`): what identifies them, how it is erased from
//! text, bytes and JSON without touching anything else, and the keyed hash that keeps them
//! off every later import. Pure: the store (`store/privacy.rs`) finds the rows and applies it.
//!
//! - **Needles** ([`Needles`]) are the person's distinctive values: the address, its
//!   first, last and full name, company, title, out-of-scope reason and custom field
//!   values (each at least [`MIN_NEEDLE`] characters). Matching is ASCII case-insensitive;
//!   every occurrence becomes `[erased]`. JSON is scrubbed value by value (and key by key),
//!   so it stays valid JSON whatever a needle spells (`null`, `true`, a quote…).
//! - **Event details** of the person's own timeline keep only their structure
//!   ([`KEPT_DETAIL_KEYS`]: states, campaign, step, ids, counts…); free text (reply text,
//!   subjects, addresses, evidence, URLs, referrals) is dropped, and what is kept is
//!   scrubbed as well.
//! - **The hash** ([`address_hash`]) is HMAC-SHA256 of the normalised address under a key
//!   generated once per database (the `forget_pepper` secret): it cannot be reversed, nor
//!   checked against a list of addresses without that key, yet an import of the same address
//!   finds it.

use hmac::{KeyInit, Mac};
use serde_json::{Map, Value};

use super::email::EmailAddress;
use super::lead::Lead;

/// What every erased occurrence becomes.
pub const ERASED: &str = "[erased]";

/// Shorter values are not searched for (a two-letter name would erase half of any text).
pub const MIN_NEEDLE: usize = 3;

/// The secret (in the `secrets` table) that keys [`address_hash`].
pub const PEPPER_SECRET: &str = "forget_pepper";

/// The domain of a forgotten lead's placeholder address (`forgotten-ID@forgotten.invalid`):
/// `.invalid` is reserved (RFC 2606) and never delivered; the domain is on the suppression
/// list as well.
pub const PLACEHOLDER_DOMAIN: &str = "forgotten.invalid";

/// The keys an event's detail (or an inbound message's effects) keeps once its lead is
/// forgotten: structure, not content.
pub const KEPT_DETAIL_KEYS: &[&str] = &[
    "action",
    "after",
    "at",
    "attempts",
    "by",
    "campaign",
    "channel",
    "classification",
    "counted",
    "cycle",
    "delivery_id",
    "due_at",
    "effect",
    "first_due",
    "from",
    "inbound_id",
    "intent",
    "intent_rule",
    "kind",
    "matched_by",
    "outcome",
    "points",
    "reason",
    "recheck_at",
    "result",
    "score",
    "segment",
    "signal",
    "state",
    "step",
    "template",
    "threshold",
    "to",
    "via",
];

/// HMAC-SHA256 of the normalised address under `pepper`, as lower-case hex.
pub fn address_hash(pepper: &str, email: &EmailAddress) -> String {
    // Invariant: HMAC accepts keys of any length.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(pepper.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(email.as_str().as_bytes());
    crate::hex::encode(&mac.finalize().into_bytes())
}

/// A new pepper: 48 random lower-case letters (generated once per database).
pub fn new_pepper() -> String {
    (0..48)
        .map(|_| char::from(b'a' + rand::random::<u8>() % 26))
        .collect()
}

/// The placeholder address a forgotten lead's row keeps (the column is unique and required).
pub fn placeholder_email(lead_id: i64) -> String {
    format!("forgotten-{lead_id}@{PLACEHOLDER_DOMAIN}")
}

/// The person's distinctive values, ASCII lower-cased, longest first (so `Ann Smith` is
/// erased whole before `Ann`).
#[derive(Debug, Clone, PartialEq)]
pub struct Needles {
    email: String,
    list: Vec<String>,
}

impl Needles {
    /// Only the address (someone who is not a lead, or rows about other people that mention
    /// them).
    pub fn address(email: &EmailAddress) -> Needles {
        Needles::from_values(email, std::iter::empty())
    }

    /// Everything distinctive about `lead` (see the module docs), plus `extra` values.
    pub fn of_lead(lead: &Lead, extra: &[&str]) -> Needles {
        let full_name = match (&lead.first_name, &lead.last_name) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            _ => None,
        };
        let values = [
            &lead.first_name,
            &lead.last_name,
            &full_name,
            &lead.company,
            &lead.title,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .chain(lead.fields.values().map(String::as_str))
        .chain(extra.iter().copied());
        Needles::from_values(&lead.email, values)
    }

    fn from_values<'a>(email: &EmailAddress, values: impl Iterator<Item = &'a str>) -> Needles {
        let email = email.as_str().to_ascii_lowercase();
        let mut list: Vec<String> = std::iter::once(email.clone())
            .chain(values.map(|v| v.trim().to_ascii_lowercase()))
            .filter(|v| v.chars().count() >= MIN_NEEDLE && v != ERASED)
            .collect();
        list.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        list.dedup();
        Needles { email, list }
    }

    /// The normalised address (what rows about the person are found by).
    pub fn email(&self) -> &str {
        &self.email
    }

    /// Only the address, for rows that belong to someone else (another lead's own row).
    pub fn address_only(&self) -> Needles {
        Needles {
            email: self.email.clone(),
            list: vec![self.email.clone()],
        }
    }

    /// `text` with every needle erased; `None` if nothing matched.
    pub fn scrub_text(&self, text: &str) -> Option<String> {
        self.scrub_bytes(text.as_bytes())
            // Invariant: needles and `[erased]` are whole UTF-8 strings and matching is
            // ASCII case-insensitive, so cuts fall on character boundaries.
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// `bytes` with every needle erased (ASCII case-insensitively); `None` if nothing matched.
    pub fn scrub_bytes(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let mut current: Option<Vec<u8>> = None;
        for needle in &self.list {
            let hay = current.as_deref().unwrap_or(bytes);
            if let Some(out) = replace_ascii_ci(hay, needle.as_bytes(), ERASED.as_bytes()) {
                current = Some(out);
            }
        }
        current
    }

    /// Erases every needle in `value`'s strings and keys; true if anything changed.
    pub fn scrub_json(&self, value: &mut Value) -> bool {
        match value {
            Value::String(s) => match self.scrub_text(s) {
                Some(new) => {
                    *s = new;
                    true
                }
                None => false,
            },
            Value::Array(items) => {
                // Every item, not only up to the first change.
                let mut changed = false;
                for v in items {
                    changed |= self.scrub_json(v);
                }
                changed
            }
            Value::Object(map) => {
                let mut changed = false;
                let old = std::mem::take(map);
                for (key, mut v) in old {
                    changed |= self.scrub_json(&mut v);
                    let key = match self.scrub_text(&key) {
                        Some(new) => {
                            changed = true;
                            new
                        }
                        None => key,
                    };
                    map.insert(key, v);
                }
                changed
            }
            _ => false,
        }
    }

    /// A text cell scrubbed: JSON text (an object or array) value by value, so it stays JSON;
    /// anything else as text. `None` if nothing matched.
    pub fn scrub_cell(&self, text: &str) -> Option<String> {
        let trimmed = text.trim_start();
        if (trimmed.starts_with('{') || trimmed.starts_with('['))
            && let Ok(mut v) = serde_json::from_str::<Value>(text)
        {
            return self.scrub_json(&mut v).then(|| v.to_string());
        }
        self.scrub_text(text)
    }
}

impl Needles {
    /// A JSON cell (PostgreSQL `jsonb` as text) scrubbed as JSON; text that is not JSON is
    /// left alone (it cannot be in a JSON column). `None` if nothing matched.
    pub fn scrub_json_text(&self, text: &str) -> Option<String> {
        let mut v = serde_json::from_str::<Value>(text).ok()?;
        self.scrub_json(&mut v).then(|| v.to_string())
    }
}

/// A forgotten lead's event detail: only [`KEPT_DETAIL_KEYS`], scrubbed; not an object →
/// an empty object.
pub fn redact_detail(detail: &Value, needles: &Needles) -> Value {
    let Value::Object(map) = detail else {
        return Value::Object(Map::new());
    };
    let mut kept: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| KEPT_DETAIL_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let dropped = map.len() - kept.len();
    let mut value = Value::Object(std::mem::take(&mut kept));
    needles.scrub_json(&mut value);
    if dropped > 0 {
        value["erased"] = Value::Bool(true);
    }
    value
}

/// A byte that continues a word (or an address): ASCII letters, digits, `_`, `@`, and any
/// byte of a non-ASCII character.
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'@' || b >= 0x80
}

/// Whether `needle` found at `hay[at..at + needle.len()]` stands on its own: not part of a
/// longer word, and an address not part of a longer address (`joann@x.com` and
/// `ann@x.com.au` do not hold `ann@x.com`; a sentence's full stop after an address is not
/// part of it). A `-` or `.` before an address is a boundary: `<reply-ann@x.com>` (a
/// Message-ID) is about the person.
fn stands_alone(hay: &[u8], at: usize, needle: &[u8]) -> bool {
    let is_address = needle.contains(&b'@');
    let before = at.checked_sub(1).and_then(|i| hay.get(i)).copied();
    let after = hay.get(at + needle.len()).copied();
    let after_next = hay.get(at + needle.len() + 1).copied();
    if before.is_some_and(is_word) {
        return false;
    }
    match after {
        Some(b) if is_word(b) => false,
        Some(b'-') if is_address => false,
        Some(b'.') if is_address => !after_next.is_some_and(is_word),
        _ => true,
    }
}

/// `hay` with every ASCII case-insensitive occurrence of `needle` that stands alone
/// ([`stands_alone`]) replaced by `with`; `None` if there is none.
fn replace_ascii_ci(hay: &[u8], needle: &[u8], with: &[u8]) -> Option<Vec<u8>> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let mut out: Option<Vec<u8>> = None;
    let mut start = 0; // first byte of `hay` not yet copied
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        if hay[i..i + needle.len()].eq_ignore_ascii_case(needle) && stands_alone(hay, i, needle) {
            let buf = out.get_or_insert_with(|| Vec::with_capacity(hay.len()));
            buf.extend_from_slice(&hay[start..i]);
            buf.extend_from_slice(with);
            i += needle.len();
            start = i;
        } else {
            i += 1;
        }
    }
    let mut buf = out?;
    buf.extend_from_slice(&hay[start..]);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lead::LeadState;
    use chrono::TimeZone;
    use serde_json::json;

    fn email(s: &str) -> EmailAddress {
        EmailAddress::parse(s).expect("an address")
    }

    fn ann() -> Lead {
        let t = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        Lead {
            id: 7,
            email: email("ann.smith@zyx.example"),
            first_name: Some("Ann".into()),
            last_name: Some("Smith".into()),
            company: Some("Zyxwv Corp".into()),
            title: Some("CTO".into()),
            owner_email: Some("rita@acme.example".into()),
            owner_name: Some("Rita".into()),
            lost_reason: Some("budget".into()),
            lost_at: None,
            timezone: None,
            tags: vec!["vip".into()],
            fields: [("crm_id".to_string(), "ZX-99812".to_string())].into(),
            state: LeadState::Nurturing,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn the_hash_is_keyed_and_stable() {
        let a = address_hash("pepper-one", &email("Ann@Example.com"));
        assert_eq!(a, address_hash("pepper-one", &email("ann@example.com")));
        assert_ne!(a, address_hash("pepper-two", &email("ann@example.com")));
        assert_ne!(a, crate::hex::sha256(b"ann@example.com"));
        assert_eq!(a.len(), 64);
        assert!(!a.contains("ann"));
    }

    #[test]
    fn peppers_are_long_and_differ() {
        let (a, b) = (new_pepper(), new_pepper());
        assert_eq!(a.len(), 48);
        assert_ne!(a, b);
    }

    #[test]
    fn every_distinctive_value_is_a_needle_and_short_ones_are_not() {
        let n = Needles::of_lead(&ann(), &["he moved to Globex"]);
        let text =
            "Ann Smith <ANN.SMITH@zyx.example>, CTO at zyxwv corp (ZX-99812): he moved to Globex";
        let out = n.scrub_text(text).expect("changed");
        for gone in ["ann", "smith", "zyx", "cto", "99812", "globex"] {
            assert!(!out.to_lowercase().contains(gone), "{gone} left in {out}");
        }
        let short = Needles::of_lead(
            &Lead {
                first_name: Some("Al".into()),
                ..ann()
            },
            &[],
        );
        assert_eq!(short.scrub_text("Also"), None);
    }

    #[test]
    fn the_full_name_goes_before_its_parts() {
        let n = Needles::of_lead(&ann(), &[]);
        assert_eq!(
            n.scrub_text("Dear Ann Smith,").as_deref(),
            Some("Dear [erased],")
        );
    }

    #[test]
    fn text_without_a_needle_is_untouched() {
        let n = Needles::of_lead(&ann(), &[]);
        assert_eq!(n.scrub_text("Hello Bob"), None);
        assert_eq!(n.scrub_bytes(b"\xff\xfe binary"), None);
    }

    #[test]
    fn bytes_are_scrubbed_around_non_utf8() {
        let n = Needles::address(&email("ann@example.com"));
        let out = n
            .scrub_bytes(b"\xffTo: ANN@example.COM\r\n")
            .expect("changed");
        assert_eq!(out, b"\xffTo: [erased]\r\n".to_vec());
    }

    #[test]
    fn json_stays_json_even_when_a_needle_spells_a_literal() {
        let mut lead = ann();
        lead.fields = [("flag".to_string(), "null".to_string())].into();
        let n = Needles::of_lead(&lead, &[]);
        let cell =
            r#"{"x":null,"who":"Ann Smith","null":"null-ish","list":["ann.smith@zyx.example"]}"#;
        let out = n.scrub_cell(cell).expect("changed");
        let v: Value = serde_json::from_str(&out).expect("still JSON");
        assert_eq!(v["x"], Value::Null);
        assert_eq!(v["who"], json!("[erased]"));
        assert_eq!(v["list"], json!(["[erased]"]));
        assert_eq!(v["[erased]"], json!("[erased]-ish"));
    }

    #[test]
    fn text_that_only_looks_like_json_is_scrubbed_as_text() {
        let n = Needles::address(&email("ann@example.com"));
        assert_eq!(
            n.scrub_cell("{not json ann@example.com").as_deref(),
            Some("{not json [erased]")
        );
    }

    #[test]
    fn address_only_needles_leave_names_alone() {
        let n = Needles::of_lead(&ann(), &[]).address_only();
        assert_eq!(n.scrub_text("Ann Smith"), None);
        assert_eq!(
            n.scrub_text("cc ann.smith@zyx.example").as_deref(),
            Some("cc [erased]")
        );
    }

    #[test]
    fn a_detail_keeps_its_structure_and_loses_its_content() {
        let n = Needles::of_lead(&ann(), &["went with Globex"]);
        let detail = json!({
            "from": "nurturing", "to": "out_of_scope", "by": "rita@acme.example",
            "reason": "went with Globex", "text": "Hi, Ann here", "subject": "Re: hello",
            "address": "ann.smith@zyx.example", "step": 2, "counted": true
        });
        let out = redact_detail(&detail, &n);
        assert_eq!(
            out,
            json!({"from": "nurturing", "to": "out_of_scope", "by": "rita@acme.example",
                   "reason": "[erased]", "step": 2, "counted": true, "erased": true})
        );
    }

    #[test]
    fn a_detail_with_nothing_to_drop_is_not_marked() {
        let n = Needles::of_lead(&ann(), &[]);
        let detail = json!({"campaign": "checkin", "step": 0});
        assert_eq!(redact_detail(&detail, &n), detail);
        assert_eq!(redact_detail(&json!("text Ann"), &n), json!({}));
    }

    #[test]
    fn the_placeholder_is_a_valid_unroutable_address() {
        let p = placeholder_email(42);
        let parsed = EmailAddress::parse(&p).expect("valid");
        assert_eq!(parsed.domain(), PLACEHOLDER_DOMAIN);
    }

    #[test]
    fn only_whole_words_and_whole_addresses_are_erased() {
        let n = Needles::of_lead(&ann(), &[]);
        assert_eq!(n.scrub_text("annual_review, Joann, smithy"), None);
        let a = Needles::address(&email("ann@example.com"));
        assert_eq!(a.scrub_text("joann@example.com, ann@example.com.au"), None);
        assert_eq!(
            a.scrub_text("<reply-ann@example.com>").as_deref(),
            Some("<reply-[erased]>")
        );
        assert_eq!(
            a.scrub_text("Write to ann@example.com. Or <ANN@example.com>!")
                .as_deref(),
            Some("Write to [erased]. Or <[erased]>!")
        );
    }

    #[test]
    fn json_text_is_scrubbed_only_as_json() {
        let mut lead = ann();
        lead.fields = [("flag".to_string(), "true".to_string())].into();
        let n = Needles::of_lead(&lead, &[]);
        assert_eq!(n.scrub_json_text("true"), None);
        assert_eq!(n.scrub_json_text("not json true"), None);
        assert_eq!(
            n.scrub_json_text(r#""true""#).as_deref(),
            Some(r#""[erased]""#)
        );
    }

    #[test]
    fn replacing_handles_edges() {
        assert_eq!(
            replace_ascii_ci(b"aa aaa", b"aa", b"X"),
            Some(b"X aaa".to_vec())
        );
        assert_eq!(replace_ascii_ci(b"", b"a", b"X"), None);
        assert_eq!(replace_ascii_ci(b"abc", b"", b"X"), None);
        assert_eq!(replace_ascii_ci(b"ABC", b"abc", b"X"), Some(b"X".to_vec()));
    }
}
