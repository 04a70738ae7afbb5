//! Adding to the suppression list on a person's word — the rules `suppress add` and the
//! console share: an entry's evidence (where it came from, by whom, a note), and the guard
//! against a broad `@domain` (a typo must not silence a whole company unasked: an entry
//! reaching more than `compliance.confirm_domain_over` leads needs a confirmation).

use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::store::{Store, StoreError, Suppression, SuppressionReason};

/// The evidence kept with an entry a person added: its `source` (`cli`, `import`,
/// `console`), an optional note, who (`by`) and the file line it came from.
pub fn evidence(
    source: &str,
    note: Option<&str>,
    by: Option<&str>,
    at: Option<(&Path, u64)>,
) -> serde_json::Value {
    let mut v = json!({ "source": source });
    if let Some(note) = note {
        v["note"] = json!(note);
    }
    if let Some(by) = by {
        v["by"] = json!(by);
    }
    if let Some((file, line)) = at {
        v["file"] = json!(file.display().to_string());
        v["line"] = json!(line);
    }
    v
}

/// The `@domain` entries among `entries` that would suppress more than `over` leads, with
/// how many each would.
pub async fn too_broad<S: Store>(
    store: &S,
    entries: &[Suppression],
    over: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut broad = Vec::new();
    for e in entries.iter().filter(|e| e.address.starts_with('@')) {
        let n = store.leads_reached(&e.address).await?;
        if n > over {
            broad.push((e.address.clone(), n));
        }
    }
    Ok(broad)
}

/// One entry a person typed (an address or `@domain`), normalised; the error says why not.
pub fn entry(
    raw: &str,
    reason: SuppressionReason,
    evidence: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Suppression, String> {
    let address = Suppression::normalise_address(raw).map_err(|e| e.to_string())?;
    Ok(Suppression {
        address,
        reason,
        evidence,
        created_at: now,
    })
}
