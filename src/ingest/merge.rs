//! Folding rows that name the same lead: within one import, rows with the same normalised
//! email become one lead, later non-empty values winning.

use std::collections::HashMap;

use super::ParsedLead;
use crate::domain::email::EmailAddress;
use crate::domain::lead::NewLead;

/// Folds rows with the same normalised email into the first one: later non-empty values win,
/// tags are unioned keeping order, fields are merged with later values winning. Returns the
/// leads left and how many rows were folded.
pub fn merge_duplicates(leads: Vec<ParsedLead>) -> (Vec<ParsedLead>, usize) {
    let mut out: Vec<ParsedLead> = Vec::with_capacity(leads.len());
    let mut index: HashMap<EmailAddress, usize> = HashMap::new();
    let mut merged = 0;
    for parsed in leads {
        let Some(email) = parsed.lead.email.clone() else {
            // Cannot happen for our parsers' output; keep such a lead as it is.
            out.push(parsed);
            continue;
        };
        match index.get(&email).and_then(|&i| out.get_mut(i)) {
            Some(first) => {
                merge_into(&mut first.lead, parsed.lead);
                merged += 1;
            }
            None => {
                index.insert(email, out.len());
                out.push(parsed);
            }
        }
    }
    (out, merged)
}

pub(super) fn merge_into(into: &mut NewLead, later: NewLead) {
    fn take<T>(into: &mut Option<T>, later: Option<T>) {
        if later.is_some() {
            *into = later;
        }
    }
    let NewLead {
        email,
        first_name,
        last_name,
        company,
        title,
        owner_email,
        owner_name,
        lost_reason,
        lost_at,
        timezone,
        tags,
        fields,
    } = later;
    take(&mut into.email, email);
    take(&mut into.first_name, first_name);
    take(&mut into.last_name, last_name);
    take(&mut into.company, company);
    take(&mut into.title, title);
    take(&mut into.owner_email, owner_email);
    take(&mut into.owner_name, owner_name);
    take(&mut into.lost_reason, lost_reason);
    take(&mut into.lost_at, lost_at);
    take(&mut into.timezone, timezone);
    for tag in tags {
        push_tag(&mut into.tags, tag);
    }
    into.fields.extend(fields);
}

/// Adds `tag` unless an equal one (ASCII case-insensitive, as segments match) is there.
pub(super) fn push_tag(tags: &mut Vec<String>, tag: String) {
    if !tags.iter().any(|t| t.eq_ignore_ascii_case(&tag)) {
        tags.push(tag);
    }
}
