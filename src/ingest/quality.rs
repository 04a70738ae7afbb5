//! Import quality rules, pure: role addresses (`info@`, `sales@`…) and disposable domains
//! (a small bundled list, extendable in config), what a policy does with them, and which
//! owner wins when rows of one file disagree about the same lead.

use chrono::{DateTime, Utc};

use crate::domain::email::EmailAddress;

/// What an import does with a questionable address (`import.role_addresses`,
/// `import.disposable_addresses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Import it and say so (the default).
    #[default]
    Warn,
    /// Leave it out and say so.
    Skip,
    /// Import it without a word.
    Accept,
}

impl Policy {
    pub const NAMES: &'static str = "warn, skip, accept";

    pub fn parse(s: &str) -> Option<Policy> {
        match s {
            "warn" => Some(Policy::Warn),
            "skip" => Some(Policy::Skip),
            "accept" => Some(Policy::Accept),
            _ => None,
        }
    }
}

/// Which row's owner a lead keeps when rows of one file name different owners
/// (`import.owner_conflict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OwnerRule {
    /// The first row's owner.
    First,
    /// The last row's owner (the default: later rows win, as for every other field).
    #[default]
    Last,
    /// The owner of the row with the most recent `lost_at` (the rep who lost it last);
    /// rows without a date count as oldest, ties go to the later row.
    LatestLostAt,
}

impl OwnerRule {
    pub const NAMES: &'static str = "first, last, latest_lost_at";

    pub fn parse(s: &str) -> Option<OwnerRule> {
        match s {
            "first" => Some(OwnerRule::First),
            "last" => Some(OwnerRule::Last),
            "latest_lost_at" => Some(OwnerRule::LatestLostAt),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OwnerRule::First => "first",
            OwnerRule::Last => "last",
            OwnerRule::LatestLostAt => "latest_lost_at",
        }
    }
}

/// Local parts that name a function, not a person (compared without a `+tag`, and with
/// `-`, `_` and `.` ignored: `no-reply`, `no_reply` and `noreply` are one).
pub const ROLE_LOCAL_PARTS: &[&str] = &[
    "abuse",
    "accounting",
    "accounts",
    "admin",
    "administrator",
    "billing",
    "careers",
    "contact",
    "customerservice",
    "donotreply",
    "enquiries",
    "enquiry",
    "hello",
    "help",
    "helpdesk",
    "hostmaster",
    "hr",
    "info",
    "inquiries",
    "invoices",
    "it",
    "jobs",
    "legal",
    "mail",
    "marketing",
    "media",
    "newsletter",
    "noreply",
    "office",
    "orders",
    "postmaster",
    "press",
    "privacy",
    "recruiting",
    "sales",
    "security",
    "service",
    "support",
    "team",
    "webmaster",
];

/// Throwaway-mailbox domains (a small bundled list; `import.disposable_domains` adds more).
/// A subdomain of a listed domain counts too.
pub const DISPOSABLE_DOMAINS: &[&str] = &[
    "10minutemail.com",
    "33mail.com",
    "dispostable.com",
    "emailondeck.com",
    "fakeinbox.com",
    "getnada.com",
    "guerrillamail.com",
    "guerrillamail.net",
    "mailcatch.com",
    "maildrop.cc",
    "mailinator.com",
    "mailnesia.com",
    "mintemail.com",
    "mohmal.com",
    "mytemp.email",
    "sharklasers.com",
    "spamgourmet.com",
    "temp-mail.org",
    "tempail.com",
    "tempmail.com",
    "tempr.email",
    "throwawaymail.com",
    "trashmail.com",
    "yopmail.com",
];

/// Whether the address's local part names a role (see [`ROLE_LOCAL_PARTS`]).
pub fn is_role_address(email: &EmailAddress) -> bool {
    let local = email.as_str().split('@').next().unwrap_or_default();
    let local = local.split('+').next().unwrap_or_default();
    let folded: String = local
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    ROLE_LOCAL_PARTS.contains(&folded.as_str())
}

/// Whether the address's domain (or a parent of it) is disposable: bundled or `extra`.
pub fn is_disposable(email: &EmailAddress, extra: &[String]) -> bool {
    let domain = email.domain().to_ascii_lowercase();
    let listed = |d: &str| {
        DISPOSABLE_DOMAINS.contains(&d) || extra.iter().any(|e| e.eq_ignore_ascii_case(d))
    };
    let mut rest = domain.as_str();
    loop {
        if listed(rest) {
            return true;
        }
        match rest.split_once('.') {
            Some((_, parent)) if parent.contains('.') => rest = parent,
            _ => return false,
        }
    }
}

/// One row's claim on a lead's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerClaim {
    pub line: usize,
    pub owner_email: String,
    pub owner_name: Option<String>,
    pub lost_at: Option<DateTime<Utc>>,
}

/// The claim `rule` picks (claims in file order; None only when there are none).
pub fn choose_owner(rule: OwnerRule, claims: &[OwnerClaim]) -> Option<&OwnerClaim> {
    match rule {
        OwnerRule::First => claims.first(),
        OwnerRule::Last => claims.last(),
        // `max_by_key` returns the last of equal maxima: ties go to the later row.
        OwnerRule::LatestLostAt => claims.iter().max_by_key(|c| c.lost_at),
    }
}

/// Whether the claims name more than one owner (compared case-insensitively).
pub fn disagree(claims: &[OwnerClaim]) -> bool {
    claims
        .windows(2)
        .any(|w| !w[0].owner_email.eq_ignore_ascii_case(&w[1].owner_email))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn email(s: &str) -> EmailAddress {
        EmailAddress::parse(s).expect("an address")
    }

    #[test]
    fn policies_and_rules_parse_by_name_only() {
        assert_eq!(Policy::parse("skip"), Some(Policy::Skip));
        assert_eq!(Policy::parse("accept"), Some(Policy::Accept));
        assert_eq!(Policy::parse("warn"), Some(Policy::Warn));
        assert_eq!(Policy::parse("Skip"), None);
        assert_eq!(Policy::default(), Policy::Warn);
        for rule in [OwnerRule::First, OwnerRule::Last, OwnerRule::LatestLostAt] {
            assert_eq!(OwnerRule::parse(rule.as_str()), Some(rule));
        }
        assert_eq!(OwnerRule::parse("newest"), None);
    }

    #[test]
    fn role_addresses_are_found_in_their_usual_spellings() {
        for role in [
            "info@acme.com",
            "Sales@acme.com",
            "support+eu@acme.com",
            "no-reply@acme.com",
            "no_reply@acme.com",
            "noreply@acme.com",
            "do-not-reply@acme.com",
            "postmaster@acme.com",
            "hr@acme.com",
        ] {
            assert!(is_role_address(&email(role)), "{role}");
        }
        for person in [
            "ann@acme.com",
            "info.smith@acme.com",
            "salesman@acme.com",
            "jane.sales@acme.com",
            "it.manager@acme.com",
        ] {
            assert!(!is_role_address(&email(person)), "{person}");
        }
    }

    #[test]
    fn disposable_domains_and_their_subdomains_are_found() {
        assert!(is_disposable(&email("x@mailinator.com"), &[]));
        assert!(is_disposable(&email("x@eu.mailinator.com"), &[]));
        assert!(is_disposable(&email("x@YOPMAIL.COM"), &[]));
        assert!(!is_disposable(&email("x@notmailinator.com"), &[]));
        assert!(!is_disposable(&email("x@acme.com"), &[]));
        let extra = vec!["Burner.Example".to_string()];
        assert!(is_disposable(&email("x@burner.example"), &extra));
        assert!(is_disposable(&email("x@a.burner.example"), &extra));
        assert!(!is_disposable(&email("x@burner.example"), &[]));
    }

    fn claim(line: usize, owner: &str, lost: Option<u32>) -> OwnerClaim {
        OwnerClaim {
            line,
            owner_email: owner.into(),
            owner_name: None,
            lost_at: lost.map(|d| Utc.with_ymd_and_hms(2026, 1, d, 0, 0, 0).unwrap()),
        }
    }

    #[test]
    fn each_rule_picks_its_row() {
        let claims = [
            claim(2, "rita@acme.com", Some(5)),
            claim(3, "tom@acme.com", Some(20)),
            claim(4, "sam@acme.com", Some(9)),
        ];
        assert_eq!(
            choose_owner(OwnerRule::First, &claims).map(|c| c.line),
            Some(2)
        );
        assert_eq!(
            choose_owner(OwnerRule::Last, &claims).map(|c| c.line),
            Some(4)
        );
        assert_eq!(
            choose_owner(OwnerRule::LatestLostAt, &claims).map(|c| c.line),
            Some(3)
        );
        assert_eq!(choose_owner(OwnerRule::Last, &[]), None);
    }

    #[test]
    fn latest_lost_at_counts_undated_rows_as_oldest_and_ties_go_to_the_later_row() {
        let claims = [
            claim(2, "rita@acme.com", Some(5)),
            claim(3, "tom@acme.com", None),
            claim(4, "sam@acme.com", Some(5)),
        ];
        assert_eq!(
            choose_owner(OwnerRule::LatestLostAt, &claims).map(|c| c.line),
            Some(4)
        );
        let undated = [
            claim(2, "rita@acme.com", None),
            claim(3, "tom@acme.com", None),
        ];
        assert_eq!(
            choose_owner(OwnerRule::LatestLostAt, &undated).map(|c| c.line),
            Some(3)
        );
    }

    #[test]
    fn owners_disagree_only_when_they_differ_beyond_case() {
        assert!(!disagree(&[
            claim(2, "Rita@acme.com", None),
            claim(3, "rita@ACME.com", None)
        ]));
        assert!(disagree(&[
            claim(2, "rita@acme.com", None),
            claim(3, "tom@acme.com", None)
        ]));
        assert!(!disagree(&[claim(2, "rita@acme.com", None)]));
    }
}
