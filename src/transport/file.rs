//! The `file` transport: each message becomes `<outbox>/<message id>.eml`, byte for byte as
//! rendered (no header is added), for dry runs, previews and tests.
//!
//! Each file is written to a hidden temporary file in the same folder and then renamed over
//! its final name, so a reader never sees a half-written message and sending the same message
//! again replaces its file instead of adding a second one. Files are not fsynced: a power cut
//! can lose a message recorded as sent, never duplicate one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{OutgoingEmail, SendError, SendOutcome};

/// Writes messages into a folder.
#[derive(Debug, Clone)]
pub struct FileTransport {
    outbox: PathBuf,
}

impl FileTransport {
    /// The folder is created on the first send.
    pub fn new(outbox: impl Into<PathBuf>) -> FileTransport {
        FileTransport {
            outbox: outbox.into(),
        }
    }

    pub fn outbox(&self) -> &Path {
        &self.outbox
    }

    /// The file a message is written to.
    pub fn path_for(&self, email: &OutgoingEmail) -> PathBuf {
        self.outbox.join(file_name(email))
    }

    /// Writes every message; an I/O error is `Transient` for that message (rewriting the same
    /// file later is harmless). One outcome per message, in the order of the batch.
    pub async fn send_batch(&self, batch: Vec<OutgoingEmail>) -> Vec<SendOutcome> {
        if batch.is_empty() {
            return Vec::new();
        }
        let ids: Vec<i64> = batch.iter().map(|m| m.delivery_id).collect();
        let outbox = self.outbox.clone();
        match tokio::task::spawn_blocking(move || write_batch(&outbox, &batch)).await {
            Ok(outcomes) => outcomes,
            Err(e) => {
                tracing::warn!(error = %e, "the file transport's writer ended abnormally");
                let error = format!("the file writer ended abnormally: {e}");
                ids.into_iter()
                    .map(|id| (id, Err(SendError::transient(error.clone()))))
                    .collect()
            }
        }
    }
}

fn write_batch(outbox: &Path, batch: &[OutgoingEmail]) -> Vec<SendOutcome> {
    if let Err(e) = std::fs::create_dir_all(outbox) {
        let error = format!("cannot create outbox {}: {e}", outbox.display());
        tracing::warn!(%error, "file transport");
        return batch
            .iter()
            .map(|m| (m.delivery_id, Err(SendError::transient(error.clone()))))
            .collect();
    }
    batch
        .iter()
        .map(|email| {
            let path = outbox.join(file_name(email));
            let outcome = write_atomically(outbox, &path, &email.bytes).map_err(|e| {
                let error = format!("cannot write {}: {e}", path.display());
                tracing::warn!(%error, delivery_id = email.delivery_id, "file transport");
                SendError::transient(error)
            });
            (email.delivery_id, outcome)
        })
        .collect()
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".tmp-{}-{}.eml.part",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// `<message id>.eml`, with every character that is unsafe in a file name replaced by `_`.
fn file_name(email: &OutgoingEmail) -> String {
    let id = email
        .message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let mut name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@' | '+' | '=') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    if name.is_empty() {
        name = format!("delivery-{}", email.delivery_id);
    }
    if name.starts_with('.') {
        // No hidden files, no "." or "..".
        name.replace_range(0..1, "_");
    }
    name.push_str(".eml");
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(message_id: &str) -> OutgoingEmail {
        OutgoingEmail {
            delivery_id: 7,
            envelope_from: "a@example.com".into(),
            envelope_to: "b@example.com".into(),
            message_id: message_id.into(),
            bytes: Vec::new(),
        }
    }

    #[test]
    fn file_names_keep_safe_characters_and_replace_the_rest() {
        assert_eq!(
            file_name(&email("abc.123@rewarm.example")),
            "abc.123@rewarm.example.eml"
        );
        assert_eq!(file_name(&email("<a/b\\c d>")), "a_b_c_d.eml");
        assert_eq!(
            file_name(&email("../../etc/passwd")),
            "_._.._etc_passwd.eml"
        );
        assert_eq!(file_name(&email("..")), "_..eml");
        assert_eq!(file_name(&email("")), "delivery-7.eml");
        assert!(file_name(&email(&"x".repeat(1000))).len() <= 204);
    }
}
