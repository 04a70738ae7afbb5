//! `leads import` of a file of any size in bounded memory: two passes over the file, never
//! the whole file (nor a value per row) in memory.
//!
//! 1. [`scan`] reads every row and checks it (bad rows are reported as they come; with
//!    `--strict` one of them stops the import before anything is written). It remembers one
//!    64-bit hash per distinct address, and in full only the later rows of addresses that
//!    occur more than once (folded together, with their owner claims): what folding
//!    duplicates and `import.owner_conflict` need from across the file.
//! 2. [`Scan::chunks`] reads the file again and hands out the leads to write, in file order,
//!    a chunk at a time: each address once, at its first row, folded with its later rows
//!    (later non-empty values win, tags are unioned), the owner the rule picks, and the
//!    address policies applied — the same leads, warnings and counts as
//!    [`super::checked::parse_checked`] gives for the whole file.
//!
//! A hash shared by two different addresses only costs exactness nothing: the second
//! address is then kept with its own rows, folded with itself (folding is idempotent).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::checked::{ImportSettings, address_policy, settle_owner};
use super::merge::merge_into;
use super::quality::{OwnerClaim, disagree};
use super::rows::{RowRules, Rows};
use super::{IngestError, ParsedLead, RowError};
use crate::domain::email::EmailAddress;
use crate::domain::lead::NewLead;

/// What the first pass learnt of a file.
pub struct Scan {
    file: PathBuf,
    /// Rows with a lead (before duplicates are folded).
    pub accepted: usize,
    /// Rows refused (each was reported to `scan`'s caller).
    pub rejected: usize,
    /// Header (or JSON key) suggestions.
    pub header_warnings: Vec<String>,
    later: HashMap<EmailAddress, Later>,
    stamp: Option<(u64, SystemTime)>,
}

/// The rows after the first of one address, folded.
#[derive(Default)]
struct Later {
    /// The line of the first of these rows.
    first_line: usize,
    lead: NewLead,
    claims: Vec<OwnerClaim>,
    /// The address's lead was handed out (its later rows are merged).
    used: bool,
}

/// A 64-bit hash is its own bucket index.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

fn claim(line: usize, lead: &NewLead) -> Option<OwnerClaim> {
    let owner = lead.owner_email.as_ref()?;
    Some(OwnerClaim {
        line,
        owner_email: owner.to_string(),
        owner_name: lead.owner_name.clone(),
        lost_at: lead.lost_at,
    })
}

/// The first pass (module docs); `on_reject` hears of each bad row, in file order.
pub fn scan(
    path: &Path,
    rules: &RowRules,
    settings: &ImportSettings,
    mut on_reject: impl FnMut(&RowError),
) -> Result<Scan, IngestError> {
    let before = stamp(path);
    let mut rows = Rows::open(path, rules, &settings.columns)?;
    let hasher = std::collections::hash_map::RandomState::new();
    let mut seen: HashSet<u64, BuildHasherDefault<Identity>> = HashSet::default();
    let mut later: HashMap<EmailAddress, Later> = HashMap::new();
    let (mut accepted, mut rejected) = (0, 0);
    for row in rows.by_ref() {
        let ParsedLead { line, lead } = match row? {
            Ok(parsed) => parsed,
            Err(e) => {
                on_reject(&e);
                rejected += 1;
                continue;
            }
        };
        accepted += 1;
        let Some(email) = lead.email.clone() else {
            continue;
        };
        if seen.insert(hasher.hash_one(email.as_str())) {
            continue;
        }
        let entry = later.entry(email).or_default();
        entry.claims.extend(claim(line, &lead));
        if entry.first_line == 0 {
            entry.first_line = line;
            entry.lead = lead;
        } else {
            merge_into(&mut entry.lead, lead);
        }
    }
    Ok(Scan {
        file: path.to_path_buf(),
        accepted,
        rejected,
        header_warnings: rows.header_warnings(),
        later,
        stamp: before,
    })
}

/// What an import says beside writing: `("warning" | "skipped" | "owner conflict", line)`.
pub type Note = (&'static str, String);

/// Leads to write, in file order.
#[derive(Default)]
pub struct Chunk {
    pub leads: Vec<NewLead>,
    /// Rows of the file this chunk covers (for a progress bar).
    pub rows: usize,
    pub notes: Vec<Note>,
}

/// Counts known once the second pass is over.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Rows folded into an earlier row with the same address.
    pub merged: usize,
    /// Leads left out by an address policy.
    pub skipped: usize,
}

/// The second pass (module docs): an iterator of chunks of at most `size` leads.
pub struct Chunks {
    rows: Rows,
    file: String,
    settings: ImportSettings,
    later: HashMap<EmailAddress, Later>,
    size: usize,
    expected: (usize, usize),
    seen: (usize, usize),
    totals: Totals,
    finished: bool,
}

impl Scan {
    /// Reads the file again; refused if it changed since the first pass.
    pub fn chunks(
        self,
        rules: &RowRules,
        settings: &ImportSettings,
        size: usize,
    ) -> Result<Chunks, IngestError> {
        let file = self.file.display().to_string();
        if stamp(&self.file) != self.stamp {
            return Err(IngestError::Changed { file });
        }
        Ok(Chunks {
            rows: Rows::open(&self.file, rules, &settings.columns)?,
            file,
            settings: settings.clone(),
            later: self.later,
            size: size.max(1),
            expected: (self.accepted, self.rejected),
            seen: (0, 0),
            totals: Totals::default(),
            finished: false,
        })
    }
}

impl Chunks {
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// The lead to write for this row, if it is the first of its address (else `None`).
    fn first_of_address(&mut self, parsed: ParsedLead, notes: &mut Vec<Note>) -> Option<NewLead> {
        let ParsedLead { line, mut lead } = parsed;
        let email = lead.email.clone()?;
        if let Some(later) = self.later.get_mut(&email) {
            if later.used {
                self.totals.merged += 1;
                return None;
            }
            later.used = true;
            let mut claims = Vec::with_capacity(later.claims.len() + 1);
            if later.first_line != line {
                claims.extend(claim(line, &lead));
                merge_into(&mut lead, std::mem::take(&mut later.lead));
            } else {
                // This row is the first of `later` (a shared hash): it is folded already.
                lead = std::mem::take(&mut later.lead);
            }
            claims.append(&mut later.claims);
            if disagree(&claims)
                && let Some(conflict) =
                    settle_owner(&mut lead, &claims, self.settings.owner_conflict)
            {
                notes.push(("owner conflict", conflict));
            }
        }
        let verdict = address_policy(&self.file, line, &email, &self.settings);
        notes.extend(verdict.warnings.into_iter().map(|w| ("warning", w)));
        if let Some(why) = verdict.skipped {
            notes.push(("skipped", why));
            self.totals.skipped += 1;
            return None;
        }
        Some(lead)
    }
}

impl Iterator for Chunks {
    type Item = Result<Chunk, IngestError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let mut chunk = Chunk::default();
        while chunk.leads.len() < self.size {
            let Some(row) = self.rows.next() else {
                self.finished = true;
                if self.seen != self.expected {
                    return Some(Err(IngestError::Changed {
                        file: self.file.clone(),
                    }));
                }
                break;
            };
            chunk.rows += 1;
            match row {
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
                Ok(Err(_)) => self.seen.1 += 1,
                Ok(Ok(parsed)) => {
                    self.seen.0 += 1;
                    if let Some(lead) = self.first_of_address(parsed, &mut chunk.notes) {
                        chunk.leads.push(lead);
                    }
                }
            }
        }
        (chunk.rows > 0).then_some(Ok(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::checked::parse_checked;
    use crate::ingest::quality::{OwnerRule, Policy};

    fn rules() -> RowRules {
        RowRules {
            default_tz: chrono_tz::UTC,
            now: chrono::DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
                .expect("a time")
                .with_timezone(&chrono::Utc),
            max_len: 1000,
        }
    }

    /// Leads, notes (sorted) and totals of a streamed import in chunks of `size`.
    fn streamed(
        path: &Path,
        settings: &ImportSettings,
        size: usize,
    ) -> (Vec<NewLead>, Vec<String>, Totals, usize) {
        let mut rejected = Vec::new();
        let scan = scan(path, &rules(), settings, |e| rejected.push(e.to_string())).expect("scan");
        assert_eq!(scan.rejected, rejected.len());
        let mut notes: Vec<String> = scan_notes(&rejected);
        notes.extend(scan.header_warnings.iter().map(|w| format!("warning: {w}")));
        let mut chunks = scan.chunks(&rules(), settings, size).expect("chunks");
        let mut leads = Vec::new();
        for chunk in chunks.by_ref() {
            let chunk = chunk.expect("a chunk");
            assert!(chunk.leads.len() <= size);
            leads.extend(chunk.leads);
            notes.extend(
                chunk
                    .notes
                    .into_iter()
                    .map(|(what, line)| format!("{what}: {line}")),
            );
        }
        notes.sort();
        (leads, notes, chunks.totals(), rejected.len())
    }

    fn scan_notes(rejected: &[String]) -> Vec<String> {
        rejected.iter().map(|e| format!("rejected {e}")).collect()
    }

    /// The same file read whole (`parse_checked`), in the streamed shape.
    fn whole(path: &Path, settings: &ImportSettings) -> (Vec<NewLead>, Vec<String>, Totals, usize) {
        let c = parse_checked(path, chrono_tz::UTC, rules().now, 1000, settings).expect("parse");
        let mut notes: Vec<String> = c
            .parsed
            .rejected
            .iter()
            .map(|e| format!("rejected {e}"))
            .collect();
        notes.extend(c.warnings.iter().map(|w| format!("warning: {w}")));
        notes.extend(c.skipped.iter().map(|w| format!("skipped: {w}")));
        notes.extend(
            c.owner_conflicts
                .iter()
                .map(|w| format!("owner conflict: {w}")),
        );
        notes.sort();
        let totals = Totals {
            merged: c.parsed.merged,
            skipped: c.skipped.len(),
        };
        let rejected = c.parsed.rejected.len();
        (
            c.parsed.leads.into_iter().map(|p| p.lead).collect(),
            notes,
            totals,
            rejected,
        )
    }

    const FILE: &str = "email,first_name,owner_email,owner_name,lost_at,tags,plan\n\
        ann@acme.com,Ann,rita@acme.com,Rita,2026-03-01,a,basic\n\
        info@acme.com,,,,,,\n\
        bob@acme.com,Bob,,,2026-01-01,b,\n\
        bad-address,,,,,,\n\
        ann@acme.com,,tom@acme.com,,2026-01-01,A;c,pro\n\
        x@mailinator.com,X,,,,,\n\
        bob@acme.com,Robert,,,,,gold\n\
        cy@acme.com,Cy,ola@acme.com,,2026-02-01,,\n\
        ann@acme.com,Annie,,,,d,\n\
        cy@acme.com,,ola@acme.com,Ola,,,\n";

    #[test]
    fn chunks_of_any_size_give_what_the_whole_file_gives() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("leads.csv");
        std::fs::write(&path, FILE).expect("write");
        for rule in [OwnerRule::First, OwnerRule::Last, OwnerRule::LatestLostAt] {
            for policy in [Policy::Warn, Policy::Skip] {
                let settings = ImportSettings {
                    owner_conflict: rule,
                    role_addresses: policy,
                    disposable_addresses: policy,
                    ..ImportSettings::default()
                };
                let want = whole(&path, &settings);
                assert_eq!(want.2.merged, 4);
                for size in [1, 2, 3, 1000] {
                    assert_eq!(
                        streamed(&path, &settings, size),
                        want,
                        "{rule:?} {policy:?} {size}"
                    );
                }
            }
        }
    }

    #[test]
    fn jsonl_chunks_give_what_the_whole_file_gives() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("leads.jsonl");
        let text = "{\"email\":\"ann@acme.com\",\"owner_email\":\"rita@acme.com\",\"tags\":[\"a\"]}\n\
                    \n\
                    {\"email\":\"bob@acme.com\",\"Lost Dat\":\"x\"}\n\
                    not json\n\
                    {\"email\":\"ANN@acme.com\",\"owner_email\":\"tom@acme.com\",\"tags\":\"b\"}\n";
        std::fs::write(&path, text).expect("write");
        let settings = ImportSettings::default();
        let want = whole(&path, &settings);
        assert_eq!((want.0.len(), want.3), (2, 1));
        for size in [1, 2, 1000] {
            assert_eq!(streamed(&path, &settings, size), want, "{size}");
        }
    }

    #[test]
    fn a_file_changed_between_the_passes_is_refused() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("leads.csv");
        std::fs::write(&path, FILE).expect("write");
        let settings = ImportSettings::default();
        let scan = scan(&path, &rules(), &settings, |_| {}).expect("scan");
        std::fs::write(&path, "email\nann@acme.com\n").expect("rewrite");
        let err = match scan.chunks(&rules(), &settings, 10) {
            Err(e) => e,
            Ok(chunks) => chunks
                .filter_map(Result::err)
                .next()
                .expect("an error once the file was read"),
        };
        assert!(matches!(err, IngestError::Changed { .. }), "{err}");
    }
}
