//! A validated, normalised email address. Once you hold one, it is valid.

use std::fmt;
use std::str::FromStr;

/// Why a string is not an email address we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email is empty")]
    Empty,
    #[error("email `{0}` is longer than 254 characters")]
    TooLong(String),
    #[error("`{0}` is not a valid email address")]
    Invalid(String),
    #[error("`{0}` cannot be sent to: {1}")]
    Unsendable(String, &'static str),
}

/// An email address, trimmed and lower-cased (the key leads are merged on).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses and normalises `raw`: trims spaces, lower-cases, and checks the address
    /// with lettre's RFC 5321 rules (so anything we accept, lettre can send to).
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.len() > 254 {
            return Err(EmailError::TooLong(trimmed.chars().take(40).collect()));
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::Invalid(trimmed.to_string()));
        }
        let normalised = trimmed.to_lowercase();
        let Some((_, domain)) = normalised.rsplit_once('@') else {
            return Err(EmailError::Invalid(trimmed.to_string()));
        };
        // lettre accepts dot-less domains (`a@localhost`); a lead's address needs a real one.
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err(EmailError::Invalid(trimmed.to_string()));
        }
        lettre::Address::from_str(&normalised)
            .map_err(|_| EmailError::Invalid(trimmed.to_string()))?;
        Ok(Self(normalised))
    }

    /// [`parse`](Self::parse), and refuses what a transport could not send to reliably: a
    /// local part (before `@`) that is not a plain dot-atom — quoted (`"a,b"@x.com`), with
    /// characters outside letters, digits and ``!#$%&'*+-/=?^_`{|}~``, dots at either end or
    /// doubled — or longer than 64 bytes. Leads come in through this (files and the API);
    /// addresses read back from the database use the lenient `parse`.
    pub fn parse_sendable(raw: &str) -> Result<Self, EmailError> {
        let address = Self::parse(raw)?;
        let local = address.0.rsplit_once('@').map(|(l, _)| l).unwrap_or("");
        let unsendable = |why| Err(EmailError::Unsendable(raw.trim().to_string(), why));
        if local.len() > 64 {
            return unsendable("the part before @ is longer than 64 bytes");
        }
        if local.starts_with('"') {
            return unsendable("a quoted local part (\"…\"@) is refused by many relays");
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return unsendable("the part before @ starts or ends with a dot, or has two in a row");
        }
        let atext = |c: char| {
            c.is_ascii_alphanumeric()
                || "!#$%&'*+-/=?^_`{|}~.".contains(c)
                || (!c.is_ascii() && c.is_alphanumeric())
        };
        if !local.chars().all(atext) {
            return unsendable(
                "the part before @ may hold only letters, digits and . ! # $ % & ' * + - / = ? ^ _ ` { | } ~",
            );
        }
        Ok(address)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@`.
    pub fn domain(&self) -> &str {
        // Invariant: parse() only builds addresses that contain '@'.
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_dot_atom_local_parts_are_sendable() {
        for ok in [
            "ann@example.com",
            "first.last+tag@example.com",
            "o'brien@example.ie",
            "a!#$%&'*+-/=?^_`{|}~z@example.com",
            "josé@example.es",
        ] {
            assert!(EmailAddress::parse_sendable(ok).is_ok(), "{ok}");
        }
        for bad in [
            "\"quoted,comma\"@example.com",
            "\"ann\"@example.com",
            "a..b@example.com",
            ".ann@example.com",
            "ann.@example.com",
        ] {
            let lenient = EmailAddress::parse(bad);
            let strict = EmailAddress::parse_sendable(bad);
            assert!(strict.is_err(), "{bad}: {strict:?} (lenient: {lenient:?})");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(matches!(
            EmailAddress::parse_sendable(&long),
            Err(EmailError::Unsendable(..) | EmailError::Invalid(_))
        ));
        let e = EmailAddress::parse_sendable("\"quoted,comma\"@example.com").unwrap_err();
        assert!(e.to_string().contains("quoted"), "{e}");
    }

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        assert_eq!(
            EmailAddress::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
    }

    #[test]
    fn plus_and_dots_are_kept() {
        assert_eq!(
            EmailAddress::parse("a.b+x@ex.co.uk").unwrap().as_str(),
            "a.b+x@ex.co.uk"
        );
    }

    #[test]
    fn bad_addresses_are_rejected() {
        for bad in [
            "",
            "   ",
            "plain",
            "@ex.com",
            "a@",
            "a@@ex.com",
            "a b@ex.com",
            "a@localhost",
            "a@ex.com.",
            "a@ex..com",
            "a\r\nBcc: x@evil.com",
        ] {
            assert!(
                EmailAddress::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn very_long_addresses_are_rejected() {
        let long = format!("{}@ex.com", "a".repeat(300));
        assert!(matches!(
            EmailAddress::parse(&long),
            Err(EmailError::TooLong(_))
        ));
    }

    #[test]
    fn domain_is_the_part_after_the_at() {
        assert_eq!(
            EmailAddress::parse("x@Sub.Ex.com").unwrap().domain(),
            "sub.ex.com"
        );
    }
}
