//! A real browser for tests: Debian's headless Chromium (`/usr/bin/chromium`, `--headless=new
//! --no-sandbox`) driven over WebDriver by `/usr/bin/chromedriver` on a free local port, with
//! `fantoccini` as the client. [`Chrome::start`] answers None (after `support::skip`, which
//! fails under `CI=true`) when either program is missing. Screenshots go to the test's
//! output folder, [`output_dir`]; the documentation's pictures also go to
//! `REWARM_SCREENSHOTS_DIR` when it is set ([`Chrome::doc_screenshot`], `docs/screenshots.sh`).
//!
//! ```ignore
//! let Some(chrome) = Chrome::start().await else { return };
//! chrome.client.goto(&url).await?;
//! chrome.screenshot("overview").await;           // <CARGO_TARGET_TMPDIR>/console-browser/overview.png
//! chrome.close().await;
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Where the browser tests save their screenshots (kept after the run).
pub fn output_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-browser");
    std::fs::create_dir_all(&dir).expect("create the screenshot folder");
    dir
}

/// The variable naming a folder where [`Chrome::doc_screenshot`] also writes its PNG.
pub const SCREENSHOTS_DIR_VAR: &str = "REWARM_SCREENSHOTS_DIR";

/// The documentation's screenshot folder, when `REWARM_SCREENSHOTS_DIR` names one.
pub fn docs_dir() -> Option<PathBuf> {
    std::env::var_os(SCREENSHOTS_DIR_VAR)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

/// A chromedriver process and a browser session on it; both end on `close` (or drop).
pub struct Chrome {
    pub client: Client,
    driver: Child,
}

impl Chrome {
    /// Starts chromedriver on a free port and opens a headless Chromium session (a window of
    /// 1280×1000). None when the programs are not installed.
    pub async fn start() -> Option<Chrome> {
        for program in [CHROMEDRIVER, CHROMIUM] {
            if !std::path::Path::new(program).exists() {
                super::skip(&format!(
                    "{program} is missing (Debian packages chromium chromium-driver)"
                ));
                return None;
            }
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            // Chromium hangs under libfaketime (`.ci/run`'s faked-clock runs): the browser keeps the
            // real clock, as Dovecot does; only rewarm and its tests see the faked time.
            .env_remove("LD_PRELOAD")
            .env_remove("FAKETIME")
            .env_remove("FAKETIME_SHARED")
            .env_remove("FAKETIME_DONT_FAKE_MONOTONIC")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut chrome_guard = DriverGuard(Some(driver));
        let url = format!("http://127.0.0.1:{port}");
        wait_until_up(&url).await;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000"],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a Chromium session through chromedriver");
        let driver = chrome_guard.0.take().expect("the driver process");
        Some(Chrome { client, driver })
    }

    /// The page's text content of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .text()
            .await
            .expect("the element's text")
    }

    /// Saves a PNG of the window as `<output_dir>/<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = output_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// A screenshot the documentation shows: saved as [`Chrome::screenshot`] does, and copied
    /// to `<docs_dir>/<name>.png` when [`docs_dir`] is set.
    pub async fn doc_screenshot(&self, name: &str) -> PathBuf {
        let path = self.screenshot(name).await;
        if let Some(dir) = docs_dir() {
            std::fs::create_dir_all(&dir).expect("create REWARM_SCREENSHOTS_DIR");
            let to = dir.join(format!("{name}.png"));
            std::fs::copy(&path, &to)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", path.display(), to.display()));
        }
        path
    }

    /// Ends the session and chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Kills chromedriver if the session could not be opened.
struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits (at most 20 s) until chromedriver answers `/status`.
async fn wait_until_up(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client.get(format!("{url}/status")).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not start on {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
