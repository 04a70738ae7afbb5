//! Which SQLite file this is, so a deleted or replaced database never silently becomes a
//! fresh one.
//!
//! On its first migration a database gets an id (random, in SQLite's `application_id`
//! header field), and a marker file next to it, `FILE.rewarm-id`, holds that id. From then
//! on:
//!
//! - opening a FILE that is missing or empty while its marker exists is refused
//!   ([`DatabaseFile::refuse_if_gone`]): a daemon that has run before does not start afresh
//!   with new token keys (every unsubscribe link already sent would answer 404) and no
//!   history — restore the file, or delete the marker to start a new database on purpose;
//! - a FILE whose id differs from its marker is refused ([`DatabaseFile::bind_marker`]);
//! - while running, the file is watched ([`DatabaseFile::still_there`]): deleted or replaced
//!   under the daemon (its connections still write to the old, unlinked file) is a storage
//!   fault (`database_gone`): nothing is claimed and `/readyz` answers 503 until the file is
//!   back.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::store::StoreError;

/// The file behind a `sqlite://FILE` or `sqlite:FILE` URL; None for an in-memory database.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// A new database id: a random, non-zero 32-bit number (SQLite's `application_id`).
pub fn new_id() -> i32 {
    loop {
        let id = rand::random::<i32>();
        if id != 0 {
            return id;
        }
    }
}

/// `FILE.rewarm-id`.
pub fn marker_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".rewarm-id");
    PathBuf::from(name)
}

/// Whether `file` holds a database: it exists and is not empty.
pub fn holds_database(file: &Path) -> bool {
    std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.len() > 0)
}

/// A database file and, once opened, which file (device and inode) it was.
#[derive(Debug, Clone)]
pub struct DatabaseFile {
    path: PathBuf,
    opened: Option<(u64, u64)>,
}

impl DatabaseFile {
    pub fn new(path: PathBuf) -> DatabaseFile {
        DatabaseFile { path, opened: None }
    }

    /// The file's size in bytes (0 when it cannot be read).
    pub fn size(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    fn marker(&self) -> Option<String> {
        std::fs::read_to_string(marker_path(&self.path))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Refuses to open (and so create) a missing or empty file that had a database before.
    pub fn refuse_if_gone(&self) -> Result<(), StoreError> {
        match self.marker() {
            Some(id) if !holds_database(&self.path) => Err(StoreError::Gone(format!(
                "{} is missing or empty, but {} says database {id} was there; refusing to start a new, empty one \
                 (its token keys would differ and every link already sent would break). Restore the file, or delete \
                 the marker to start afresh on purpose",
                self.path.display(),
                marker_path(&self.path).display()
            ))),
            _ => Ok(()),
        }
    }

    /// Notes which file was opened (device and inode), for [`DatabaseFile::still_there`].
    pub fn opened(mut self) -> DatabaseFile {
        self.opened = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        self
    }

    /// After migrating: writes the marker with the database's `id` if there is none, and
    /// refuses a database whose id is not the marker's (the file was replaced).
    pub fn bind_marker(&self, id: &str) -> Result<(), StoreError> {
        match self.marker() {
            Some(marked) if marked == id => Ok(()),
            Some(marked) => Err(StoreError::Gone(format!(
                "{} is database {id}, but {} says database {marked} was there: the file was replaced. \
                 Put the right file back, or delete the marker to adopt this one",
                self.path.display(),
                marker_path(&self.path).display()
            ))),
            None => {
                if let Err(e) = std::fs::write(marker_path(&self.path), format!("{id}\n")) {
                    tracing::warn!(error = %e, file = %self.path.display(),
                        "Could not write the database's identity marker; a deleted database would not be noticed at start-up");
                }
                Ok(())
            }
        }
    }

    /// The file this store opened is still at its path: not deleted, not replaced.
    pub fn still_there(&self) -> Result<(), StoreError> {
        let Some(opened) = self.opened else {
            return Ok(());
        };
        match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::Gone(format!(
                "{} was deleted while the daemon was running",
                self.path.display()
            ))),
            Ok(m) if (m.dev(), m.ino()) != opened => Err(StoreError::Gone(format!(
                "{} was replaced by another file while the daemon was running; restart to open it",
                self.path.display()
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_file_and_memory_has_none() {
        for (url, file) in [
            ("sqlite://rewarm.db", Some("rewarm.db")),
            (
                "sqlite:///var/lib/rewarm/rewarm.db",
                Some("/var/lib/rewarm/rewarm.db"),
            ),
            ("sqlite:data/x.db?mode=rwc", Some("data/x.db")),
            ("sqlite::memory:", None),
            ("sqlite://:memory:", None),
            ("sqlite://x.db?mode=memory", None),
            ("postgres://db/x", None),
        ] {
            assert_eq!(sqlite_file(url), file.map(PathBuf::from), "{url}");
        }
    }

    #[test]
    fn a_missing_file_with_a_marker_is_refused_and_without_one_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let file = DatabaseFile::new(path.clone());
        file.refuse_if_gone().expect("never ran here: may create");
        std::fs::write(marker_path(&path), "abc\n").unwrap();
        let err = file.refuse_if_gone().unwrap_err().to_string();
        assert!(
            err.contains("abc") && err.contains("r.db.rewarm-id"),
            "{err}"
        );
        std::fs::write(&path, b"").unwrap();
        assert!(
            file.refuse_if_gone().is_err(),
            "an empty file is no database"
        );
        std::fs::write(&path, b"SQLite format 3\0").unwrap();
        file.refuse_if_gone().expect("the file is there");
    }

    #[test]
    fn the_marker_is_written_once_and_a_different_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        std::fs::write(&path, b"x").unwrap();
        let file = DatabaseFile::new(path.clone()).opened();
        file.bind_marker("id1").unwrap();
        assert_eq!(
            std::fs::read_to_string(marker_path(&path)).unwrap(),
            "id1\n"
        );
        file.bind_marker("id1").unwrap();
        let err = file.bind_marker("id2").unwrap_err().to_string();
        assert!(err.contains("replaced"), "{err}");
    }

    #[test]
    fn a_deleted_or_replaced_file_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        std::fs::write(&path, b"x").unwrap();
        let file = DatabaseFile::new(path.clone()).opened();
        file.still_there().unwrap();
        let aside = dir.path().join("aside.db");
        std::fs::rename(&path, &aside).unwrap();
        assert!(
            file.still_there()
                .unwrap_err()
                .to_string()
                .contains("deleted")
        );
        std::fs::write(&path, b"y").unwrap();
        assert!(
            file.still_there()
                .unwrap_err()
                .to_string()
                .contains("replaced")
        );
        std::fs::rename(&aside, &path).unwrap();
        file.still_there().expect("the same file is back");
    }
}
