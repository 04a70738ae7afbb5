//! Rows of one file that disagree about a lead's owner: collected before duplicates are
//! folded (the fold keeps the later row's owner), so the configured rule
//! (`import.owner_conflict`, [`super::quality::OwnerRule`]) can decide afterwards.

use std::collections::HashMap;

use super::ParsedLead;
use super::quality::{OwnerClaim, disagree};
use crate::domain::email::EmailAddress;

/// Per email whose rows name more than one owner: every row's claim, in file order (rows
/// without an owner make no claim). Emails in order of first appearance.
pub fn conflicting_claims(leads: &[ParsedLead]) -> Vec<(EmailAddress, Vec<OwnerClaim>)> {
    let mut order: Vec<EmailAddress> = Vec::new();
    let mut claims: HashMap<&EmailAddress, Vec<OwnerClaim>> = HashMap::new();
    for parsed in leads {
        let (Some(email), Some(owner)) = (&parsed.lead.email, &parsed.lead.owner_email) else {
            continue;
        };
        let entry = claims.entry(email).or_default();
        if entry.is_empty() {
            order.push(email.clone());
        }
        entry.push(OwnerClaim {
            line: parsed.line,
            owner_email: owner.to_string(),
            owner_name: parsed.lead.owner_name.clone(),
            lost_at: parsed.lead.lost_at,
        });
    }
    order
        .into_iter()
        .filter_map(|email| {
            let c = claims.remove(&email)?;
            disagree(&c).then_some((email, c))
        })
        .collect()
}
