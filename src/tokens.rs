//! Signed tokens for links and addresses that come back to us (unsubscribe, click, reply,
//! bounce). A token names what it is for and which delivery it belongs to, carries the id
//! of the key that signed it (so keys can rotate), and is verified in constant time: a
//! forged or altered token matches nothing.
//!
//! Form: `KEYID.SEALED.TAG`, each part URL- and local-part-safe (`[A-Za-z0-9_-]`). With
//! CLAIMS = kind ‖ delivery id ‖ extra (13 bytes) and PAYLOAD = base64url(CLAIMS), TAG is the
//! first 16 bytes of HMAC-SHA256(key, KEYID ‖ "." ‖ PAYLOAD ‖ "." ‖ context), and SEALED is
//! base64url(CLAIMS XOR the first 13 bytes of HMAC-SHA256(key, "seal" ‖ TAG)): the token is
//! opaque (a reader learns neither the delivery id nor how many emails were sent), and
//! verifying unseals with the TAG, then checks the TAG over what it unsealed.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};

use crate::secret::Secret;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const TAG_LEN: usize = 16;

/// What a token may be used for; a token of one kind never works as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Unsubscribe = 1,
    Click = 2,
    Reply = 3,
    Bounce = 4,
    /// Sales' one-click feedback (`notify::feedback`): the "delivery id" is the lead's id,
    /// `extra` packs the action and expiry, the context is the owner's address.
    Feedback = 5,
    /// A console sign-in link (`console::signin`): the "delivery id" is the link's random
    /// id; the database keeps only the token's hash.
    ConsoleSignIn = 6,
}

impl TokenKind {
    fn from_byte(b: u8) -> Option<Self> {
        [
            TokenKind::Unsubscribe,
            TokenKind::Click,
            TokenKind::Reply,
            TokenKind::Bounce,
            TokenKind::Feedback,
            TokenKind::ConsoleSignIn,
        ]
        .into_iter()
        .find(|k| *k as u8 == b)
    }
}

/// What a valid token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub kind: TokenKind,
    pub delivery_id: i64,
    /// Kind-specific (the link's index for clicks); 0 otherwise.
    pub extra: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenKeyError {
    #[error("no token signing key configured")]
    NoKeys,
    #[error("token key id `{0}` must be 1 to 16 characters of A-Z, a-z, 0-9")]
    BadKeyId(String),
    #[error("token key `{0}` is shorter than 32 bytes")]
    TooShort(String),
}

/// The signing keys: the first signs, all verify (older keys stay until their links age out).
#[derive(Clone)]
pub struct TokenKeys {
    keys: Vec<(String, Secret)>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|(id, _)| id))
            .finish()
    }
}

impl TokenKeys {
    pub fn new(keys: Vec<(String, Secret)>) -> Result<Self, TokenKeyError> {
        if keys.is_empty() {
            return Err(TokenKeyError::NoKeys);
        }
        for (id, secret) in &keys {
            if id.is_empty() || id.len() > 16 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(TokenKeyError::BadKeyId(id.clone()));
            }
            if secret.expose().len() < 32 {
                return Err(TokenKeyError::TooShort(id.clone()));
            }
        }
        Ok(Self { keys })
    }

    fn mac(secret: &Secret, kid: &str, payload: &str, context: &[u8]) -> HmacSha256 {
        // Invariant: HMAC accepts keys of any length.
        let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes())
            .expect("HMAC takes any key length");
        mac.update(kid.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac.update(b".");
        mac.update(context);
        mac
    }

    /// A token for `kind` of delivery `delivery_id`, signed with the current key.
    pub fn sign(&self, kind: TokenKind, delivery_id: i64, extra: u32) -> String {
        self.sign_with(kind, delivery_id, extra, b"")
    }

    /// Like `sign`, and the signature also covers `context`, which travels beside the token
    /// (e.g. a click's target URL): the token verifies only with that exact context, so a
    /// link can redirect only to a URL we signed.
    pub fn sign_with(
        &self,
        kind: TokenKind,
        delivery_id: i64,
        extra: u32,
        context: &[u8],
    ) -> String {
        let (kid, secret) = &self.keys[0];
        let mut raw = Vec::with_capacity(13);
        raw.push(kind as u8);
        raw.extend_from_slice(&delivery_id.to_be_bytes());
        raw.extend_from_slice(&extra.to_be_bytes());
        let payload = URL_SAFE_NO_PAD.encode(&raw);
        let tag = Self::mac(secret, kid, &payload, context)
            .finalize()
            .into_bytes();
        let tag = &tag[..TAG_LEN];
        Self::seal(secret, tag, &mut raw);
        format!(
            "{kid}.{}.{}",
            URL_SAFE_NO_PAD.encode(&raw),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// XORs `claims` with a keystream derived from the key and the tag (its own inverse).
    fn seal(secret: &Secret, tag: &[u8], claims: &mut [u8]) {
        // Invariant: HMAC accepts keys of any length.
        let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes())
            .expect("HMAC takes any key length");
        mac.update(b"seal");
        mac.update(tag);
        let stream = mac.finalize().into_bytes();
        for (b, k) in claims.iter_mut().zip(stream.iter()) {
            *b ^= k;
        }
    }

    /// The claims of `token` if a configured key signed it, else None.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        self.verify_with(token, b"")
    }

    /// Verifies a token made by `sign_with` with the same `context`.
    pub fn verify_with(&self, token: &str, context: &[u8]) -> Option<Claims> {
        if token.len() > 128 {
            return None;
        }
        let mut parts = token.split('.');
        let (kid, sealed, tag) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let (_, secret) = self.keys.iter().find(|(id, _)| id == kid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if tag.len() != TAG_LEN {
            return None;
        }
        let mut raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if raw.len() != 13 {
            return None;
        }
        Self::seal(secret, &tag, &mut raw);
        // Constant-time comparison of the truncated tag, over the unsealed claims.
        Self::mac(secret, kid, &URL_SAFE_NO_PAD.encode(&raw), context)
            .verify_truncated_left(&tag)
            .ok()?;
        let kind = TokenKind::from_byte(raw[0])?;
        let delivery_id = i64::from_be_bytes(raw[1..9].try_into().ok()?);
        let extra = u32::from_be_bytes(raw[9..13].try_into().ok()?);
        Some(Claims {
            kind,
            delivery_id,
            extra,
        })
    }

    /// The claims sealed in `token` **without checking its signature** — only to find the
    /// context a token was signed over (e.g. the lead whose owner a feedback token is bound
    /// to), which [`TokenKeys::verify_with`] must then confirm before anything is done.
    pub fn unverified_claims(&self, token: &str) -> Option<Claims> {
        if token.len() > 128 {
            return None;
        }
        let mut parts = token.split('.');
        let (kid, sealed, tag) = (parts.next()?, parts.next()?, parts.next()?);
        let (_, secret) = self.keys.iter().find(|(id, _)| id == kid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let mut raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if tag.len() != TAG_LEN || raw.len() != 13 {
            return None;
        }
        Self::seal(secret, &tag, &mut raw);
        Some(Claims {
            kind: TokenKind::from_byte(raw[0])?,
            delivery_id: i64::from_be_bytes(raw[1..9].try_into().ok()?),
            extra: u32::from_be_bytes(raw[9..13].try_into().ok()?),
        })
    }

    /// Like `verify`, and the token must be of `kind`.
    pub fn verify_kind(&self, token: &str, kind: TokenKind) -> Option<Claims> {
        self.verify(token).filter(|c| c.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(vec![
            ("k2".into(), Secret::new("b".repeat(32))),
            ("k1".into(), Secret::new("a".repeat(32))),
        ])
        .unwrap()
    }

    #[test]
    fn a_signed_token_verifies_to_its_claims() {
        let k = keys();
        let t = k.sign(TokenKind::Click, 42, 3);
        assert_eq!(
            k.verify(&t),
            Some(Claims {
                kind: TokenKind::Click,
                delivery_id: 42,
                extra: 3
            })
        );
        assert!(t.starts_with("k2."));
        // Opaque: the same claims under another key look unrelated, and the id is not in
        // the clear (13 bytes of claims → 18 base64 characters, none of them the plain form).
        let plain = URL_SAFE_NO_PAD
            .encode([&[2u8][..], &42i64.to_be_bytes(), &3u32.to_be_bytes()].concat());
        assert!(!t.contains(&plain), "{t}");
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        );
    }

    #[test]
    fn tokens_signed_with_an_older_key_still_verify() {
        let old = TokenKeys::new(vec![("k1".into(), Secret::new("a".repeat(32)))]).unwrap();
        let t = old.sign(TokenKind::Unsubscribe, 7, 0);
        assert_eq!(keys().verify(&t).map(|c| c.delivery_id), Some(7));
    }

    #[test]
    fn a_token_of_another_kind_is_refused() {
        let k = keys();
        let t = k.sign(TokenKind::Click, 42, 0);
        assert!(k.verify_kind(&t, TokenKind::Unsubscribe).is_none());
    }

    #[test]
    fn every_single_character_change_is_refused() {
        let k = keys();
        let t = k.sign(TokenKind::Unsubscribe, 123_456, 0);
        let alphabet: Vec<char> =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
                .chars()
                .collect();
        let mut accepted = 0;
        for i in 0..t.len() {
            for c in &alphabet {
                let mut chars: Vec<char> = t.chars().collect();
                if chars[i] == *c {
                    continue;
                }
                chars[i] = *c;
                let mutated: String = chars.into_iter().collect();
                if k.verify(&mutated).is_some() {
                    accepted += 1;
                }
            }
        }
        assert_eq!(accepted, 0);
    }

    #[test]
    fn a_token_signed_with_a_context_verifies_only_with_that_context() {
        let k = keys();
        let t = k.sign_with(TokenKind::Click, 9, 0, b"https://acme.example/pricing");
        assert!(k.verify_with(&t, b"https://acme.example/pricing").is_some());
        assert!(k.verify_with(&t, b"https://evil.example/").is_none());
        assert!(k.verify(&t).is_none());
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let k = keys();
        for bad in [
            "",
            ".",
            "..",
            "k2..",
            "k2.AAAA.BBBB",
            "nokey.AAAA.BBBB",
            "k2.!!!.???",
            &"x".repeat(500),
            "k2.a.b.c",
        ] {
            assert!(k.verify(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn keys_must_be_long_and_named_plainly() {
        assert!(TokenKeys::new(vec![]).is_err());
        assert!(TokenKeys::new(vec![("k1".into(), Secret::new("short"))]).is_err());
        assert!(TokenKeys::new(vec![("k.1".into(), Secret::new("a".repeat(32)))]).is_err());
    }
}
