//! An import file read with the `[import]` settings: CRM headers mapped
//! (`import.columns`), headers close to a known field reported, role and disposable
//! addresses warned about or skipped by policy, and owner conflicts between rows of the file
//! decided by `import.owner_conflict` and named. The parser itself is unchanged: the header
//! row (or each JSON line's keys) is rewritten before it reads the file, and the rules apply
//! to what it returns.

use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::headers::ColumnMap;
use super::quality::{OwnerClaim, OwnerRule, Policy, choose_owner, is_disposable, is_role_address};
use super::rows::{RowRules, Rows};
use super::{IngestError, Parsed, finish_parsed};
use crate::domain::email::EmailAddress;
use crate::domain::lead::NewLead;

/// `[import]`: how files and the API's leads are judged before they are written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportSettings {
    /// `[import.columns]`: CRM headers → lead fields.
    pub columns: ColumnMap,
    /// `import.role_addresses` (default warn).
    pub role_addresses: Policy,
    /// `import.disposable_addresses` (default warn).
    pub disposable_addresses: Policy,
    /// `import.disposable_domains`: added to the bundled list.
    pub disposable_domains: Vec<String>,
    /// `import.owner_conflict` (default last).
    pub owner_conflict: OwnerRule,
}

/// A file read and judged: the leads to write, and what to tell the person importing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checked {
    pub parsed: Parsed,
    /// Header suggestions and addresses imported despite a warning (`file:line: …`).
    pub warnings: Vec<String>,
    /// Rows left out by a `skip` policy (`file:line: address: why`).
    pub skipped: Vec<String>,
    /// Leads whose rows disagreed on the owner: who they were and who was kept.
    pub owner_conflicts: Vec<String>,
}

/// Reads `path` like `ingest::parse_path_limited`, with `settings` applied (module docs),
/// holding the whole file's leads: for tests and small files; `leads import` streams (see
/// [`super::chunks`]) under the same rules.
pub fn parse_checked(
    path: &Path,
    default_tz: Tz,
    now: DateTime<Utc>,
    max_len: usize,
    settings: &ImportSettings,
) -> Result<Checked, IngestError> {
    let file = path.display().to_string();
    let rules = RowRules {
        default_tz,
        now,
        max_len,
    };
    let mut rows = Rows::open(path, &rules, &settings.columns)?;
    let parsed = finish_parsed(rows.by_ref().collect::<Result<Vec<_>, _>>()?);
    let warnings = rows.header_warnings();
    Ok(judge(&file, parsed, warnings, settings))
}

/// Applies the owner rule and the address policies to what the parser returned.
pub fn judge(
    file: &str,
    mut parsed: Parsed,
    mut warnings: Vec<String>,
    settings: &ImportSettings,
) -> Checked {
    let owner_conflicts = apply_owner_rule(&mut parsed, settings.owner_conflict);
    let mut skipped = Vec::new();
    parsed.leads.retain(|p| {
        let Some(email) = &p.lead.email else {
            return true;
        };
        let verdict = address_policy(file, p.line, email, settings);
        warnings.extend(verdict.warnings);
        match verdict.skipped {
            Some(why) => {
                skipped.push(why);
                false
            }
            None => true,
        }
    });
    Checked {
        parsed,
        warnings,
        skipped,
        owner_conflicts,
    }
}

/// What the address policies say of one lead (its first row on `line`): warnings
/// (`file:line: address: why`), and why it is left out, if it is.
#[derive(Debug, Default)]
pub struct Verdict {
    pub warnings: Vec<String>,
    pub skipped: Option<String>,
}

/// `import.role_addresses` and `import.disposable_addresses` applied to one address.
pub fn address_policy(
    file: &str,
    line: usize,
    email: &EmailAddress,
    settings: &ImportSettings,
) -> Verdict {
    let verdicts = [
        (
            is_role_address(email),
            settings.role_addresses,
            "a role address, not a person",
            "import.role_addresses",
        ),
        (
            is_disposable(email, &settings.disposable_domains),
            settings.disposable_addresses,
            "a disposable address",
            "import.disposable_addresses",
        ),
    ];
    let mut verdict = Verdict::default();
    for (hit, policy, what, key) in verdicts {
        match (hit, policy) {
            (true, Policy::Skip) => {
                verdict.skipped = Some(format!(
                    "{file}:{line}: {email}: {what} (skipped: {key} = \"skip\")"
                ));
                break;
            }
            (true, Policy::Warn) => verdict.warnings.push(format!(
                "{file}:{line}: {email}: {what} (imported; {key} = \"skip\" leaves such rows out)"
            )),
            _ => {}
        }
    }
    verdict
}

/// Gives each lead whose rows disagreed the owner `rule` picks; one line per such lead.
fn apply_owner_rule(parsed: &mut Parsed, rule: OwnerRule) -> Vec<String> {
    let mut lines = Vec::new();
    for (email, claims) in &parsed.owner_claims {
        if let Some(lead) = parsed
            .leads
            .iter_mut()
            .find(|p| p.lead.email.as_ref() == Some(email))
            && let Some(line) = settle_owner(&mut lead.lead, claims, rule)
        {
            lines.push(line);
        }
    }
    lines
}

/// Gives `lead` the owner `rule` picks among its rows' `claims` (which disagree); the line
/// that says so.
pub fn settle_owner(lead: &mut NewLead, claims: &[OwnerClaim], rule: OwnerRule) -> Option<String> {
    let chosen = choose_owner(rule, claims)?;
    lead.owner_email = EmailAddress::parse(&chosen.owner_email).ok();
    lead.owner_name = chosen.owner_name.clone();
    let named: Vec<String> = claims
        .iter()
        .map(|c| format!("line {} {}", c.line, c.owner_email))
        .collect();
    Some(format!(
        "{}: rows disagree on the owner ({}); kept {} (import.owner_conflict = \"{}\")",
        lead.email.as_ref().map_or("", |e| e.as_str()),
        named.join(", "),
        chosen.owner_email,
        rule.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
            .expect("a time")
            .with_timezone(&Utc)
    }

    fn check(name: &str, text: &str, settings: &ImportSettings) -> Checked {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        parse_checked(&path, chrono_tz::UTC, now(), 1000, settings).expect("readable")
    }

    fn mapped() -> ImportSettings {
        let raw: BTreeMap<String, String> =
            [("Lost Date".to_string(), "lost_at".to_string())].into();
        ImportSettings {
            columns: ColumnMap::new(&raw).expect("valid"),
            ..ImportSettings::default()
        }
    }

    #[test]
    fn a_mapped_csv_header_fills_the_field() {
        let c = check(
            "crm.csv",
            "Email,Lost Date\nann@acme.com,2026-01-15\n",
            &mapped(),
        );
        let lead = &c.parsed.leads[0].lead;
        assert_eq!(
            lead.lost_at.map(|t| t.to_rfc3339()),
            Some("2026-01-15T00:00:00+00:00".into())
        );
        assert!(lead.fields.is_empty());
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn a_mapped_json_key_fills_the_field_and_line_numbers_hold() {
        let c = check(
            "crm.jsonl",
            "{\"email\":\"ann@acme.com\",\"Lost Date\":\"2026-01-15\"}\n\n{\"email\":\"bad\"}\n",
            &mapped(),
        );
        assert!(c.parsed.leads[0].lead.lost_at.is_some());
        assert_eq!(c.parsed.rejected[0].line, 3);
    }

    #[test]
    fn an_unmapped_close_header_is_a_warning_naming_the_fix() {
        let c = check(
            "crm.csv",
            "Email,Lost Dat\nann@acme.com,2026-01-15\n",
            &ImportSettings::default(),
        );
        assert_eq!(c.warnings.len(), 1);
        assert!(
            c.warnings[0].contains("did you mean `lost_at`"),
            "{}",
            c.warnings[0]
        );
        assert_eq!(c.parsed.leads[0].lead.fields["lost_dat"], "2026-01-15");
    }

    #[test]
    fn role_and_disposable_addresses_follow_their_policies() {
        let text = "email\ninfo@acme.com\nx@mailinator.com\nann@acme.com\n";
        let warned = check("l.csv", text, &ImportSettings::default());
        assert_eq!(warned.parsed.leads.len(), 3);
        assert_eq!(warned.warnings.len(), 2, "{:?}", warned.warnings);
        assert!(
            warned.warnings[0].contains(":2: info@acme.com: a role address"),
            "{:?}",
            warned.warnings
        );
        let skip = ImportSettings {
            role_addresses: Policy::Skip,
            disposable_addresses: Policy::Skip,
            ..ImportSettings::default()
        };
        let skipped = check("l.csv", text, &skip);
        assert_eq!(skipped.parsed.leads.len(), 1);
        assert_eq!(skipped.skipped.len(), 2);
        assert!(
            skipped.skipped[0].contains(":2: info@acme.com: a role address"),
            "{:?}",
            skipped.skipped
        );
        let accept = ImportSettings {
            role_addresses: Policy::Accept,
            disposable_addresses: Policy::Accept,
            ..ImportSettings::default()
        };
        let accepted = check("l.csv", text, &accept);
        assert_eq!(accepted.parsed.leads.len(), 3);
        assert!(accepted.warnings.is_empty() && accepted.skipped.is_empty());
    }

    #[test]
    fn owner_conflicts_are_named_and_decided_by_the_rule() {
        let text = "email,owner_email,owner_name,lost_at\n\
                    ann@acme.com,rita@acme.com,Rita,2026-03-01\n\
                    bob@acme.com,rita@acme.com,Rita,2026-03-01\n\
                    ann@acme.com,tom@acme.com,,2026-01-01\n";
        for (rule, owner, name) in [
            (OwnerRule::First, "rita@acme.com", Some("Rita")),
            (OwnerRule::Last, "tom@acme.com", None),
            (OwnerRule::LatestLostAt, "rita@acme.com", Some("Rita")),
        ] {
            let settings = ImportSettings {
                owner_conflict: rule,
                ..ImportSettings::default()
            };
            let c = check("l.csv", text, &settings);
            let ann = &c.parsed.leads[0].lead;
            assert_eq!(
                ann.owner_email.as_ref().map(|e| e.as_str()),
                Some(owner),
                "{rule:?}"
            );
            assert_eq!(ann.owner_name.as_deref(), name, "{rule:?}");
            assert_eq!(c.owner_conflicts.len(), 1, "{:?}", c.owner_conflicts);
            let line = &c.owner_conflicts[0];
            assert!(
                line.contains("line 2 rita@acme.com") && line.contains("line 4 tom@acme.com"),
                "{line}"
            );
        }
    }
}
