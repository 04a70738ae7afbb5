//! A real Dovecot IMAP server for tests: `dovecot -F -c CONFIG` as a child process, with its
//! config, state, logs and a passwd-file user's Maildir in a temporary folder, listening on a
//! free high port on 127.0.0.1 (plain IMAP, `ssl = no`). [`Dovecot::start_tls`] adds an implicit
//! TLS listener (IMAPS) on a second port, with a self-signed certificate for `localhost` and
//! `127.0.0.1` made by `openssl` at start; the plain listener stays for the test's own sessions.
//!
//! Works as root (CI: login processes run as `dovenull`, the mail user as `dovecot`, because
//! Dovecot refuses to run either as root) and as an ordinary user (everything runs as that
//! user). Debian: `apt-get install dovecot-imapd` (`.ci/run` installs it). When `dovecot` is not
//! installed, [`Dovecot::start`] returns `None` after printing a loud SKIPPED line.
//!
//! Use it as `crate::support::dovecot`. The server stops when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use tokio::net::TcpStream;

pub const USER: &str = "tester";
pub const PASSWORD: &str = "s3cret-imap";

pub struct Dovecot {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
    /// The IMAPS port, when started with [`Dovecot::start_tls`].
    tls_port: Option<u16>,
}

/// The `dovecot` binary: on PATH, or Debian's /usr/sbin (not on an ordinary user's PATH).
pub fn binary() -> Option<PathBuf> {
    ["dovecot", "/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
        .into_iter()
        .map(PathBuf::from)
        .find(|bin| {
            Command::new(bin)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })
}

fn id(args: &[&str]) -> Option<String> {
    let out = Command::new("id").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A raw IMAP session to the test server (for APPEND, CREATE, DELETE …).
pub type ImapSession = async_imap::Session<TcpStream>;

impl Dovecot {
    /// Starts a fresh server, or prints SKIPPED and returns `None` when Dovecot is missing.
    pub async fn start() -> Option<Dovecot> {
        let Some(bin) = binary() else {
            super::skip(
                "dovecot not installed (apt-get install dovecot-imapd; .ci/run installs it)",
            );
            return None;
        };
        Some(Self::start_installed(&bin, false).await)
    }

    /// Like [`Dovecot::start`], plus an IMAPS listener ([`Dovecot::tls_port`]) whose
    /// certificate is [`Dovecot::cert_path`]; `None` (SKIPPED) without dovecot or openssl.
    pub async fn start_tls() -> Option<Dovecot> {
        let bin = binary();
        let openssl = Command::new("openssl")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let Some(bin) = bin.filter(|_| openssl) else {
            super::skip("dovecot or openssl not installed (apt-get install dovecot-imapd openssl)");
            return None;
        };
        Some(Self::start_installed(&bin, true).await)
    }

    async fn start_installed(bin: &Path, tls: bool) -> Dovecot {
        let dir = tempfile::Builder::new()
            .prefix("rewarm-dovecot-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().to_path_buf();
        // The mail and login processes run as other users when we are root: let them in.
        set_mode(&root, 0o755);
        for sub in ["base", "state", "home"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        let is_root = id(&["-u"]).as_deref() == Some("0");
        let (login_user, internal_user, mail_uid, mail_gid) = if is_root {
            let uid = id(&["-u", "dovecot"]).expect("the `dovecot` user (from dovecot-core)");
            let gid = id(&["-g", "dovecot"]).expect("the `dovecot` group");
            ("dovenull".to_string(), "dovecot".to_string(), uid, gid)
        } else {
            let me = id(&["-un"]).expect("id -un");
            (
                me.clone(),
                me,
                id(&["-u"]).expect("id -u"),
                id(&["-g"]).expect("id -g"),
            )
        };
        let home = root.join("home").join(USER);
        std::fs::create_dir_all(&home).expect("mkdir home");
        if is_root {
            let status = Command::new("chown")
                .arg("-R")
                .arg(format!("{mail_uid}:{mail_gid}"))
                .arg(&home)
                .status()
                .expect("chown");
            assert!(status.success(), "chown of the Dovecot home failed");
        }
        let passwd = root.join("passwd");
        std::fs::write(
            &passwd,
            format!(
                "{USER}:{{PLAIN}}{PASSWORD}:{mail_uid}:{mail_gid}::{}::\n",
                home.display()
            ),
        )
        .expect("write passwd");
        set_mode(&passwd, 0o644);

        let port = free_port();
        let tls_port = tls.then(free_port);
        if tls {
            make_certificate(&root);
        }
        let r = root.display();
        // With TLS, `ssl = yes` (not `required`) keeps the plain listener usable for the test's
        // own APPEND and inspection sessions; the poller under test uses the IMAPS port.
        let (ssl, imaps_port) = match tls_port {
            Some(p) => (
                format!("ssl = yes\nssl_cert = <{r}/cert.pem\nssl_key = <{r}/key.pem"),
                format!("address = 127.0.0.1\n    port = {p}\n    ssl = yes"),
            ),
            None => ("ssl = no".to_string(), "port = 0".to_string()),
        };
        let config = format!(
            "base_dir = {r}/base
state_dir = {r}/state
listen = 127.0.0.1
protocols = imap
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {r}/dovecot.log
info_log_path = {r}/dovecot.log
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
login_trusted_networks = 127.0.0.0/8
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {r}/passwd
}}
userdb {{
  driver = passwd-file
  args = {r}/passwd
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    {imaps_port}
  }}
}}
service anvil {{
  chroot =
}}
"
        );
        let config_path = root.join("dovecot.conf");
        std::fs::write(&config_path, config).expect("write dovecot.conf");
        // Dovecot is an outside service: it runs on the machine's real clock even when the
        // suite runs under libfaketime (`.ci/run`'s faked-clock step). Under a faked clock its
        // master sees time jump ("Time moved backwards") and stops starting login processes for
        // 180 s, so every IMAP connection would hang.
        let child = Command::new(bin)
            .env_remove("LD_PRELOAD")
            .env_remove("FAKETIME")
            .env_remove("FAKETIME_SHARED")
            .arg("-F")
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(root.join("stderr.log")).expect("stderr.log"),
            ))
            .spawn()
            .expect("spawn dovecot");
        let mut server = Dovecot {
            dir,
            child,
            port,
            tls_port,
        };
        server.wait_ready().await;
        if let Some(p) = tls_port {
            server.wait_listening(p).await;
        }
        server
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("dovecot exited at start ({status}):\n{}", self.logs());
            }
            if let Ok(mut session) = self.try_login().await {
                let _ = session.logout().await;
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "dovecot did not accept a login within 20 s:\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `port` accepts TCP connections (the IMAPS listener; the plain one answered).
    async fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if Instant::now() > deadline {
                panic!("dovecot's IMAPS port {port} is not open:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn try_login(&self) -> anyhow::Result<ImapSession> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let mut client = async_imap::Client::new(tcp);
        client
            .read_response()
            .await?
            .ok_or_else(|| anyhow::anyhow!("no greeting"))?;
        client
            .login(USER, PASSWORD)
            .await
            .map_err(|(e, _)| anyhow::Error::new(e))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The IMAPS (implicit TLS) port; panics unless started with [`Dovecot::start_tls`].
    pub fn tls_port(&self) -> u16 {
        self.tls_port.expect("Dovecot::start_tls")
    }

    /// The server's self-signed certificate (PEM), its own trust anchor.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Dovecot's log and stderr (for failure messages).
    pub fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- dovecot.log ---\n{}\n--- stderr ---\n{}",
            read("dovecot.log"),
            read("stderr.log")
        )
    }

    /// `ImapSettings` for the poller (plain IMAP on loopback).
    pub fn settings(
        &self,
        mailbox: &str,
        processed_mailbox: Option<&str>,
    ) -> rewarm::config::ImapSettings {
        rewarm::config::ImapSettings {
            host: "127.0.0.1".into(),
            port: self.port,
            tls: false,
            username: USER.into(),
            password_env: "REWARM_TEST_IMAP_PASSWORD".into(),
            mailbox: mailbox.into(),
            processed_mailbox: processed_mailbox.map(Into::into),
            poll: Duration::from_secs(1),
            ca_file: None,
        }
    }

    /// `ImapSettings` for the poller over implicit TLS to the IMAPS port, trusting `ca_file`
    /// (besides the built-in roots) when given.
    pub fn tls_settings(
        &self,
        mailbox: &str,
        processed_mailbox: Option<&str>,
        ca_file: Option<&Path>,
    ) -> rewarm::config::ImapSettings {
        rewarm::config::ImapSettings {
            port: self.tls_port(),
            tls: true,
            ca_file: ca_file.map(|p| {
                rewarm::config::CaFile::read(p).unwrap_or_else(|e| panic!("ca_file: {e}"))
            }),
            ..self.settings(mailbox, processed_mailbox)
        }
    }

    pub fn password(&self) -> rewarm::secret::Secret {
        rewarm::secret::Secret::new(PASSWORD)
    }

    /// A logged-in session of the test user.
    pub async fn session(&self) -> ImapSession {
        match self.try_login().await {
            Ok(s) => s,
            Err(e) => panic!("IMAP login to the test Dovecot: {e:#}\n{}", self.logs()),
        }
    }

    /// APPENDs `raw` to `mailbox` (creating the mailbox if needed).
    pub async fn append(&self, mailbox: &str, raw: &[u8]) {
        let mut s = self.session().await;
        if mailbox != "INBOX" {
            let _ = s.create(mailbox).await;
        }
        s.append(mailbox, None, None, raw)
            .await
            .unwrap_or_else(|e| panic!("APPEND to {mailbox}: {e}\n{}", self.logs()));
        let _ = s.logout().await;
    }

    /// The UIDs in `mailbox` and whether each is `\Seen` / carries `keyword`.
    pub async fn messages(&self, mailbox: &str) -> Vec<MessageState> {
        let mut s = self.session().await;
        let mb = s
            .select(mailbox)
            .await
            .unwrap_or_else(|e| panic!("SELECT {mailbox}: {e}"));
        let mut out = Vec::new();
        if mb.exists > 0 {
            let fetches: Vec<_> = s
                .fetch("1:*", "(UID FLAGS BODY.PEEK[])")
                .await
                .expect("FETCH")
                .try_collect()
                .await
                .expect("FETCH stream");
            for f in &fetches {
                let Some(uid) = f.uid else { continue };
                let flags: Vec<String> = f.flags().map(|fl| format!("{fl:?}")).collect();
                out.push(MessageState {
                    uid,
                    seen: f
                        .flags()
                        .any(|fl| matches!(fl, async_imap::types::Flag::Seen)),
                    keywords: f
                        .flags()
                        .filter_map(|fl| match fl {
                            async_imap::types::Flag::Custom(k) => Some(k.to_string()),
                            _ => None,
                        })
                        .collect(),
                    flags,
                    raw: f.body().map(<[u8]>::to_vec).unwrap_or_default(),
                });
            }
        }
        out.sort_by_key(|m| m.uid);
        let _ = s.logout().await;
        out
    }

    /// Deletes and recreates `mailbox` (a new UIDVALIDITY).
    pub async fn recreate(&self, mailbox: &str) {
        let mut s = self.session().await;
        s.delete(mailbox)
            .await
            .unwrap_or_else(|e| panic!("DELETE {mailbox}: {e}"));
        s.create(mailbox)
            .await
            .unwrap_or_else(|e| panic!("CREATE {mailbox}: {e}"));
        let _ = s.logout().await;
    }

    /// The mailbox's UIDVALIDITY.
    pub async fn uidvalidity(&self, mailbox: &str) -> u32 {
        let mut s = self.session().await;
        let mb = s.select(mailbox).await.expect("SELECT");
        let _ = s.logout().await;
        mb.uid_validity.expect("UIDVALIDITY")
    }
}

#[derive(Debug, Clone)]
pub struct MessageState {
    pub uid: u32,
    pub seen: bool,
    pub keywords: Vec<String>,
    /// Only read in the `{:?}` of a failing assertion.
    #[allow(dead_code)]
    pub flags: Vec<String>,
    pub raw: Vec<u8>,
}

/// A throwaway self-signed server certificate (no CA) for `localhost` / `127.0.0.1` (2 days) in
/// `root/cert.pem`, its key in `root/key.pem`.
fn make_certificate(root: &Path) {
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // Not a CA: webpki refuses a CA certificate as the server's own (CaUsedAsEndEntity).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(root.join("key.pem"))
        .arg("-out")
        .arg(root.join("cert.pem"))
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl req failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its children; SIGKILL if it does not go.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
