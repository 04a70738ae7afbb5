//! A `rewarm run` daemon started by a test: its stdout and stderr in a log file, stopped with
//! SIGTERM as systemd stops it, and killed when dropped (a failing test leaves nothing behind).

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    /// The log file's stem ("daemon-0"): how messages name this daemon.
    pub name: String,
    pub child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Spawns `command` (the binary with its arguments and environment) with its output in `log`.
    pub fn spawn(mut command: Command, log: PathBuf) -> Daemon {
        let file = std::fs::File::create(&log).expect("the daemon's log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone the log file"))
            .stderr(file)
            .spawn()
            .expect("start the daemon");
        let name = log
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Daemon { name, child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last 15 lines of the log.
    pub fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Panics (with the log) if the daemon is gone.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().expect("poll the daemon") {
            panic!("the daemon exited ({status}):\n{}", self.log());
        }
    }

    /// SIGTERM, what systemd sends on `stop`.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {}", self.pid());
    }

    /// The exit status once the daemon has ended, or None if it still runs after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the daemon") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then waits for the daemon to drain and exit; panics (with the log) if it is
    /// still running after `within`.
    pub async fn terminate(&mut self, within: Duration) -> ExitStatus {
        self.sigterm();
        match self.wait_exit(within).await {
            Some(status) => status,
            None => panic!(
                "the daemon did not stop within {within:?} of SIGTERM:\n{}",
                self.log()
            ),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
