//! The Rust side of an import, the same whatever the database: duplicates inside a batch
//! folded, each lead's content hash, and which leads are new, known and unchanged, or known
//! and to be merged.
//!
//! A lead written by an import keeps `import_hash` (migration 0017): a hash of the
//! [`NewLead`] that was merged into it. The same row imported again merges into nothing
//! new (merging is idempotent), so a lead whose stored hash equals the row's is unchanged
//! without being read. Any other write to the lead's data clears the hash (a trigger), so a
//! lead changed since (a reassignment, the API, another file) is read and merged as before.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Value, json};

use super::batch::{fold_new_lead, lead_json, merge_lead};
use super::*;

/// Duplicates inside an import batch (same normalised email) folded together, first
/// appearance first; rows without an email are skipped. Nothing is copied unless folded.
pub(crate) struct Folded<'a> {
    pub leads: Vec<Cow<'a, NewLead>>,
}

impl<'a> Folded<'a> {
    pub(crate) fn new(leads: &'a [NewLead]) -> Self {
        let mut index: HashMap<&EmailAddress, usize> = HashMap::with_capacity(leads.len());
        let mut out: Vec<Cow<'a, NewLead>> = Vec::with_capacity(leads.len());
        for lead in leads {
            let Some(email) = &lead.email else {
                continue;
            };
            match index.get(email).and_then(|&i| out.get_mut(i)) {
                Some(first) => fold_new_lead(first.to_mut(), lead),
                None => {
                    index.insert(email, out.len());
                    out.push(Cow::Borrowed(lead));
                }
            }
        }
        Folded { leads: out }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.leads.is_empty()
    }

    /// The emails, for the statement that reads the leads already known.
    pub(crate) fn emails(&self) -> Vec<&str> {
        self.leads.iter().filter_map(|l| email_of(l)).collect()
    }

    /// Sorts the leads by what is stored under their email (`known`: the stored leads among
    /// them as id, email, import hash — the rows of the backends' look-up).
    pub(crate) fn sort(&self, known: Vec<(i64, String, Option<i64>)>) -> Sorted<'_> {
        let mut known: HashMap<String, (i64, Option<i64>)> = known
            .into_iter()
            .map(|(id, email, hash)| (email, (id, hash)))
            .collect();
        let mut sorted = Sorted::default();
        for lead in &self.leads {
            let lead: &NewLead = lead;
            let Some(email) = email_of(lead) else {
                continue;
            };
            let hash = import_hash(lead);
            match known.remove(email) {
                None => sorted.new.push((lead, hash)),
                Some((_, Some(stored))) if stored == hash => sorted.unchanged += 1,
                Some((id, _)) => sorted.known.push((lead, id, hash)),
            }
        }
        sorted
    }
}

fn email_of(lead: &NewLead) -> Option<&str> {
    lead.email.as_ref().map(EmailAddress::as_str)
}

/// A batch's leads by what the store holds.
#[derive(Default)]
pub(crate) struct Sorted<'a> {
    /// Not stored yet: the lead and its hash, in file order.
    pub new: Vec<(&'a NewLead, i64)>,
    /// Stored with another hash (or none): the lead, the stored id, the new hash.
    pub known: Vec<(&'a NewLead, i64, i64)>,
    /// Stored with this very hash: nothing to do.
    pub unchanged: usize,
}

impl Sorted<'_> {
    /// The ids of the known leads, to read them whole.
    pub(crate) fn known_ids(&self) -> Vec<i64> {
        self.known.iter().map(|(_, id, _)| *id).collect()
    }

    /// Merges the known leads into the stored ones (`stored`): `updates` as `lead_json` +
    /// `import_hash` + the `updated` event's `detail` (JSON text), and `rehash` (`id`,
    /// `import_hash`) for those the merge leaves as they are.
    pub(crate) fn merge(&self, stored: Vec<Lead>, source: &str) -> Merged {
        let mut stored: HashMap<i64, Lead> = stored.into_iter().map(|l| (l.id, l)).collect();
        let mut merged = Merged::default();
        for (new, id, hash) in &self.known {
            let Some(old) = stored.remove(id) else {
                continue;
            };
            let (lead, changed) = merge_lead(&old, new);
            if changed.is_empty() {
                merged.rehash.push(json!({"id": id, "import_hash": hash}));
                merged.unchanged += 1;
            } else {
                let mut v = lead_json(&lead);
                v["import_hash"] = json!(hash);
                v["detail"] = json!({"source": source, "changed": changed})
                    .to_string()
                    .into();
                merged.updates.push(v);
            }
        }
        merged
    }
}

/// What importing a batch would do (`leads import --dry-run`).
#[derive(Debug, Default)]
pub struct ImportPreview {
    /// The counts `upsert_leads` would report for the batch.
    pub summary: UpsertSummary,
    /// The leads it would insert, in file order, each with whether the suppression list holds
    /// its address or domain (it would arrive `suppressed`).
    pub new: Vec<(NewLead, bool)>,
}

/// What importing `leads` would do, writing nothing: folded and sorted as
/// [`LeadStore::upsert_leads`] does (an unchanged row known by its hash, the other known
/// leads read in one go and merged in memory). Three reads a batch, whatever its size.
pub async fn preview_import<S: LeadStore>(
    store: &S,
    leads: &[NewLead],
) -> Result<ImportPreview, StoreError> {
    let folded = Folded::new(leads);
    if folded.is_empty() {
        return Ok(ImportPreview::default());
    }
    let lookup = store.import_lookup(&folded.emails()).await?;
    let sorted = folded.sort(lookup.known);
    let stored = if sorted.known.is_empty() {
        Vec::new()
    } else {
        store.leads_by_ids(&sorted.known_ids()).await?
    };
    let merged = sorted.merge(stored, "");
    let new = sorted
        .new
        .iter()
        .map(|(lead, _)| {
            let listed = email_of(lead).is_some_and(|e| lookup.suppressed.contains(e));
            ((*lead).clone(), listed)
        })
        .collect::<Vec<_>>();
    Ok(ImportPreview {
        summary: UpsertSummary {
            inserted: new.len(),
            updated: merged.updates.len(),
            unchanged: sorted.unchanged + merged.unchanged,
        },
        new,
    })
}

/// Known leads after the merge.
#[derive(Default)]
pub(crate) struct Merged {
    pub updates: Vec<Value>,
    pub rehash: Vec<Value>,
    pub unchanged: usize,
}

/// 64-bit FNV-1a: stable across builds and platforms (the hash is stored).
struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// A length-prefixed piece, so `("ab", "c")` and `("a", "bc")` differ.
    fn piece(&mut self, text: &str) {
        self.bytes(&(text.len() as u64).to_le_bytes());
        self.bytes(text.as_bytes());
    }

    fn option(&mut self, text: Option<&str>) {
        match text {
            Some(text) => {
                self.bytes(&[1]);
                self.piece(text);
            }
            None => self.bytes(&[0]),
        }
    }
}

/// What an import stores in `import_hash` for `lead` (see the module docs).
pub(crate) fn import_hash(lead: &NewLead) -> i64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    h.bytes(b"rewarm-import-1");
    h.option(email_of(lead));
    for text in [
        &lead.first_name,
        &lead.last_name,
        &lead.company,
        &lead.title,
    ] {
        h.option(text.as_deref());
    }
    h.option(lead.owner_email.as_ref().map(EmailAddress::as_str));
    h.option(lead.owner_name.as_deref());
    h.option(lead.lost_reason.as_deref());
    h.bytes(
        &lead
            .lost_at
            .map_or(i64::MIN, |t| t.timestamp_millis())
            .to_le_bytes(),
    );
    h.option(lead.timezone.map(|t| t.name()));
    h.bytes(&(lead.tags.len() as u64).to_le_bytes());
    for tag in &lead.tags {
        h.piece(tag);
    }
    h.bytes(&(lead.fields.len() as u64).to_le_bytes());
    for (k, v) in &lead.fields {
        h.piece(k);
        h.piece(v);
    }
    i64::from_le_bytes(h.0.to_le_bytes())
}

/// A new lead's column values as both backends bind them.
pub(crate) struct NewRow<'a> {
    pub email: &'a str,
    pub lead: &'a NewLead,
    pub lost_at: Option<i64>,
    pub tags: String,
    pub fields: String,
    pub hash: i64,
}

impl<'a> NewRow<'a> {
    pub(crate) fn new(lead: &'a NewLead, hash: i64) -> Option<Self> {
        Some(NewRow {
            email: email_of(lead)?,
            lead,
            lost_at: lead.lost_at.map(|t| t.timestamp_millis()),
            tags: serde_json::to_string(&lead.tags).unwrap_or_else(|_| "[]".into()),
            fields: serde_json::to_string(&lead.fields).unwrap_or_else(|_| "{}".into()),
            hash,
        })
    }

    pub(crate) fn owner_email(&self) -> Option<&'a str> {
        self.lead.owner_email.as_ref().map(EmailAddress::as_str)
    }

    pub(crate) fn timezone(&self) -> Option<&'static str> {
        self.lead.timezone.map(|t| t.name())
    }

    /// `@domain`, as the suppression list spells a domain entry.
    pub(crate) fn at_domain(&self) -> String {
        let domain = self.email.rsplit_once('@').map_or("", |(_, d)| d);
        format!("@{domain}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(email: &str) -> NewLead {
        NewLead {
            email: Some(EmailAddress::parse(email).expect("an address")),
            ..NewLead::default()
        }
    }

    #[test]
    fn the_hash_tells_every_field_apart() {
        let base = lead("ann@acme.example");
        let mut variants = vec![base.clone()];
        let mut l = base.clone();
        l.first_name = Some("Ann".into());
        variants.push(l);
        let mut l = base.clone();
        l.last_name = Some("Ann".into());
        variants.push(l);
        let mut l = base.clone();
        l.tags = vec!["a".into(), "b".into()];
        variants.push(l);
        let mut l = base.clone();
        l.tags = vec!["ab".into()];
        variants.push(l);
        let mut l = base.clone();
        l.fields.insert("a".into(), "b".into());
        variants.push(l);
        let mut l = base.clone();
        l.fields.insert("ab".into(), String::new());
        variants.push(l);
        variants.push(lead("bob@acme.example"));
        let hashes: std::collections::BTreeSet<i64> = variants.iter().map(import_hash).collect();
        assert_eq!(hashes.len(), variants.len());
        assert_eq!(import_hash(&base), import_hash(&base.clone()));
    }

    #[test]
    fn the_hash_is_stable_across_builds() {
        // Stored in the database: a change here makes every stored hash stale (harmless, but
        // the next re-import reads every lead once).
        assert_eq!(
            import_hash(&lead("ann@acme.example")),
            import_hash(&lead("ann@acme.example"))
        );
        let h = import_hash(&lead("ann@acme.example"));
        assert_eq!(h, FIXED_HASH, "{h}");
    }

    const FIXED_HASH: i64 = 7_773_219_699_055_627_477;
}
