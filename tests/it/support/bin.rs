//! The built `rewarm` binary as a test runs it, and the repository's files a test starts from.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's root (`CARGO_MANIFEST_DIR`): `templates/`, `config/`, `tests/fixtures/`.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary cargo built for these tests, nothing set yet: a caller adds its arguments,
/// folder, environment and stdio (the daemons of a test are spawned from this too).
pub fn command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rewarm"))
}

/// `rewarm ARGS…` run to its end in `dir`.
pub fn rewarm(dir: &Path, args: &[&str]) -> Output {
    command()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run rewarm")
}

/// What a command wrote to stderr, as text.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What a command that had to succeed wrote to stdout (panics with its stderr if it failed).
pub fn stdout_of(out: &Output) -> String {
    assert!(out.status.success(), "{}", stderr_of(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copies the folder `from` (recursively) to `to`, e.g. the repository's templates into a
/// test's temporary folder so the test may change them.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()))
    {
        let path = entry.expect("a directory entry").path();
        let target = to.join(path.file_name().expect("a file name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", path.display()));
        }
    }
}

/// A temporary folder holding a copy of the repository's templates in `templates/`.
pub fn dir_with_templates() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    copy_dir(&repo().join("templates"), &dir.path().join("templates"));
    dir
}
