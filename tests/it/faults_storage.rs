//! Storage faults: stop, say why, recover by yourself (issue 9 part 3). Real processes of
//! the built binary, the test SMTP server, real SQLite files.
//!
//! - Disk full: the database lives on a small filesystem (a 24 MiB tmpfs) that is then filled
//!   up during sends. The daemon stops claiming, `/readyz` answers 503 naming the storage
//!   fault, and once space is freed it goes on by itself — no restart: everything sent once,
//!   nothing lost, nothing written off.
//! - The database file deleted under a running daemon: `/readyz` answers 503
//!   (`database_gone`); a restart refuses to create a fresh, empty database in its place
//!   (the `FILE.rewarm-id` marker), so the token keys and history are never silently lost.
//! - `db copy` refuses a source that does not exist, and creates nothing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::bin::{self, stderr_of};
use crate::support::faults::{self, SERIAL, T0};
use crate::support::smtp_server::TestSmtpServer;

const POOL: usize = 4;

/// A tmpfs of `size` mounted on `dir` (unmounted when dropped); None where mounting is not
/// allowed.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).ok()?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| SmallDisk {
            dir: dir.to_path_buf(),
        })
    }

    /// Writes a filler file until the filesystem is full; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write as _;
        let path = self.dir.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.flush();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

async fn wait_ready(port: u16, want: u16, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some((status, body)) = faults::readyz(port).await
            && status == want
        {
            return Some(body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_claiming_says_why_and_recovers_without_a_restart() {
    let _serial = SERIAL.lock().await;
    const N: usize = 1500;
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(disk) = SmallDisk::mount(&dir.path().join("disk"), "24m") else {
        crate::support::skip("disk full: mounting a small tmpfs needs root (mount -t tmpfs)");
        return;
    };
    let url = format!("sqlite://{}", disk.dir.join("rewarm.db").display());
    let server = TestSmtpServer::start().await;
    let port = faults::free_port();
    let config = faults::write(&faults::config(&url, server.port(), POOL, port), dir.path());
    faults::seed(&url, &config, N).await;
    let mut daemon = faults::start_daemon(&config, "daemon", T0, dir.path());
    assert!(
        server.wait_for_count(100, Duration::from_secs(60)).await,
        "nothing was sent:\n{}",
        daemon.log()
    );

    let filler = disk.fill();
    let body = wait_ready(port, 503, Duration::from_secs(30))
        .await
        .unwrap_or_else(|| {
            panic!(
                "/readyz never answered 503 with the disk full:\n{}",
                daemon.log_tail()
            )
        });
    assert!(body.contains("storage: failing"), "{body}");
    let at_full = server.count();
    tokio::time::sleep(Duration::from_secs(2)).await;
    daemon.assert_alive();
    let while_full = server.count() - at_full;

    std::fs::remove_file(&filler).expect("free the space");
    let tally =
        faults::wait_until_done(&url, &server, N, Duration::from_secs(120), &mut daemon).await;
    let ready = wait_ready(port, 200, Duration::from_secs(10)).await;
    let log = daemon.log();
    let exit = daemon.terminate(Duration::from_secs(30)).await;
    eprintln!(
        "disk full after {at_full} sends ({while_full} more while full); /readyz said: {}; after freeing space: {}",
        body.lines().collect::<Vec<_>>().join(" | "),
        tally.line()
    );
    assert!(exit.success());
    assert!(ready.is_some(), "/readyz answers 200 again:\n{log}");
    assert_eq!(
        (
            tally.pending,
            tally.lost,
            tally.duplicates,
            tally.written_off
        ),
        (0, 0, 0, 0),
        "{log}"
    );
    assert_eq!(tally.sent, N);
    assert_eq!(
        log.matches("Storage fault: claiming stopped").count(),
        log.matches("Storage works again").count().max(1),
        "logged once per state change:\n{log}"
    );
    assert!(
        !log.contains("non-zero transaction depth"),
        "no connection stuck in a transaction:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_database_is_noticed_and_never_silently_recreated() {
    let _serial = SERIAL.lock().await;
    const N: usize = 20;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("rewarm.db");
    let url = format!("sqlite://{}", file.display());
    let server = TestSmtpServer::start().await;
    let port = faults::free_port();
    let config = faults::write(&faults::config(&url, server.port(), POOL, port), dir.path());
    faults::seed(&url, &config, N).await;
    assert!(
        dir.path().join("rewarm.db.rewarm-id").exists(),
        "the first migration writes the identity marker"
    );
    let mut daemon = faults::start_daemon(&config, "daemon", T0, dir.path());
    let done =
        faults::wait_until_done(&url, &server, N, Duration::from_secs(60), &mut daemon).await;
    assert_eq!(done.sent, N);
    assert!(
        wait_ready(port, 200, Duration::from_secs(10))
            .await
            .is_some()
    );

    std::fs::remove_file(&file).expect("delete the database");
    let body = wait_ready(port, 503, Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("/readyz stayed ready:\n{}", daemon.log_tail()));
    assert!(body.contains("database_gone"), "{body}");
    let exit = daemon.terminate(Duration::from_secs(30)).await;
    assert!(exit.success());

    // A restart refuses to start afresh in its place.
    let out = bin::rewarm(
        dir.path(),
        &[
            "--config",
            &config.display().to_string(),
            "run",
            "--once",
            "--now",
            T0,
        ],
    );
    let err = stderr_of(&out);
    assert!(
        !out.status.success(),
        "a fresh database was accepted:\n{err}"
    );
    assert!(err.contains("rewarm.db.rewarm-id"), "{err}");
    assert!(!file.exists(), "no empty database was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_copy_refuses_a_source_that_does_not_exist() {
    let dir = tempfile::tempdir().expect("temp dir");
    let typo = dir.path().join("typo.db");
    let out = bin::rewarm(
        dir.path(),
        &[
            "db",
            "copy",
            "--from",
            &format!("sqlite://{}", typo.display()),
            "--to",
            &format!("sqlite://{}", dir.path().join("target.db").display()),
        ],
    );
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert!(!typo.exists(), "the missing source was not created");
}
