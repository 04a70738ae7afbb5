//! `rewarm inbound replay FILE.eml... [--dry-run]`: saved messages through exactly the path IMAP
//! and the webhooks use (`inbound::process`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use crate::app::Loaded;
use crate::inbound::process::{InboundMessage, process};
use crate::store::Store;

/// The dedupe key of a replayed file: the SHA-256 of its bytes, so replaying the same file
/// twice is a no-op.
pub fn replay_key(raw: &[u8]) -> String {
    format!("replay:sha256:{}", crate::hex::sha256(raw))
}

pub async fn replay<S: Store>(
    store: &S,
    loaded: &Loaded,
    files: &[PathBuf],
    dry_run: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    for file in files {
        let raw =
            std::fs::read(file).with_context(|| format!("Failed to read {}", file.display()))?;
        let msg = InboundMessage {
            dedupe_key: replay_key(&raw),
            raw,
            source: "replay".into(),
            received_at: now,
        };
        let processed = process(store, loaded, &msg, now, dry_run)
            .await
            .with_context(|| format!("Failed to process {}", file.display()))?;
        let lead = processed.lead.as_ref().map(|e| e.to_string());
        // Keys in the documented order: file, classification, intent, lead (then what was
        // done).
        let mut line = format!(
            "{{\"file\":{},\"classification\":{},\"intent\":{},\"lead\":{}",
            serde_json::json!(file.display().to_string()),
            serde_json::json!(processed.classification.as_str()),
            serde_json::json!(processed.intent.as_ref().map(|v| v.intent.as_str())),
            serde_json::json!(lead),
        );
        if !processed.others.is_empty() {
            let others: Vec<String> = processed.others.iter().map(|e| e.to_string()).collect();
            line.push_str(&format!(",\"others\":{}", serde_json::json!(others)));
        }
        if !dry_run {
            line.push_str(&format!(
                ",\"matched_by\":{},\"inbound_id\":{},\"duplicate\":{}",
                serde_json::json!(processed.matched_by),
                serde_json::json!(processed.inbound_id),
                processed.duplicate,
            ));
        }
        line.push('}');
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
