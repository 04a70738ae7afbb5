//! A daemon configuration for a test, built from defaults and overrides instead of written out
//! as TOML in every file. [`TestConfig::new`] is the smallest configuration `rewarm check`
//! accepts (one segment, one campaign, the three-line default cadence); each test changes
//! only what it is about, and [`TestConfig::toml`] writes the text the binary or
//! `Settings::from_toml` reads.
//!
//! Tables are written in the order they were first named, keys in the order they were set;
//! `[[segments]]` entries in the order they were added (the first matching segment wins).

use std::path::Path;

/// The pipeline tests' fixture folder: a full daemon configuration (`rewarm.toml`), its
/// templates and leads.
pub const PIPELINE_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pipeline");

/// tests/fixtures/pipeline/rewarm.toml with a test's database, the fixture templates and the
/// test SMTP server's port filled in (its `@…@` placeholders).
pub fn pipeline_fixture(database_url: &str, smtp_port: u16) -> String {
    std::fs::read_to_string(format!("{PIPELINE_FIXTURES}/rewarm.toml"))
        .expect("read the fixture config")
        .replace("@DATABASE_URL@", database_url)
        .replace("@TEMPLATES_DIR@", &format!("{PIPELINE_FIXTURES}/templates"))
        .replace("@SMTP_PORT@", &smtp_port.to_string())
}

/// A campaign that may send at any hour of any day: tests pick their moments, not the window.
pub const ANY_TIME: &str = r#"{ days = "Mon-Sun", hours = "00:00-24:00" }"#;

/// The postal address of the default `[compliance]` table.
pub const POSTAL_ADDRESS: &str = "Acme Inc., 1 Example Street, 75001 Paris, France";

/// One table: `[name]`, or one entry `[[name]]` of an array of tables; `""` is the top level.
#[derive(Clone, Debug)]
struct Table {
    name: String,
    array: bool,
    /// `key = value`, the value already in TOML (quoted strings, inline tables, …).
    entries: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct TestConfig {
    tables: Vec<Table>,
}

/// `value` as a TOML basic string.
pub fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl TestConfig {
    /// The database, the compliance address and a sender; no segment, no campaign.
    pub fn bare(database_url: &str) -> TestConfig {
        TestConfig { tables: Vec::new() }
            .set_str("", "database_url", database_url)
            .set_str("compliance", "postal_address", POSTAL_ADDRESS)
            .set_str("sender", "from", "Acme <hello@acme.example>")
    }

    /// [`TestConfig::bare`] with segment `all` → campaign `checkin`, first email 90 days after
    /// the loss, then every 30 days (the repository's `checkin` templates).
    pub fn new(database_url: &str) -> TestConfig {
        TestConfig::bare(database_url)
            .segment("all", "checkin")
            .campaign("checkin", "90d", "30d")
    }

    /// Sets `key` of table `table` ("" for the top level, "transport.smtp", "segments" for the
    /// last segment added …) to `value`, written as it is (TOML). A key set again is replaced
    /// in place; a table named for the first time is added after the others.
    pub fn set(mut self, table: &str, key: &str, value: impl Into<String>) -> TestConfig {
        let value = value.into();
        let index = match self.tables.iter().rposition(|t| t.name == table) {
            Some(index) => index,
            None => {
                self.tables.push(Table {
                    name: table.to_string(),
                    array: false,
                    entries: Vec::new(),
                });
                self.tables.len() - 1
            }
        };
        let entries = &mut self.tables[index].entries;
        match entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => entries.push((key.to_string(), value)),
        }
        self
    }

    /// Sets `key` to the string `value` (quoted for TOML).
    pub fn set_str(self, table: &str, key: &str, value: &str) -> TestConfig {
        self.set(table, key, quoted(value))
    }

    /// Adds a `[[segments]]` entry; [`TestConfig::set`] on "segments" changes it further.
    pub fn segment(mut self, name: &str, campaign: &str) -> TestConfig {
        self.tables.push(Table {
            name: "segments".into(),
            array: true,
            entries: vec![
                ("name".into(), quoted(name)),
                ("campaign".into(), quoted(campaign)),
            ],
        });
        self
    }

    /// Adds `[campaigns.NAME]` with its first email `first_after` the loss, then `every`.
    pub fn campaign(self, name: &str, first_after: &str, every: &str) -> TestConfig {
        let table = format!("campaigns.{name}");
        self.set_str(&table, "first_after", first_after)
            .set_str(&table, "every", every)
    }

    /// A campaign key: `max_touches`, `templates`, `send_window`, … (TOML value).
    pub fn campaign_key(self, campaign: &str, key: &str, value: impl Into<String>) -> TestConfig {
        self.set(&format!("campaigns.{campaign}"), key, value)
    }

    /// The campaign may send at any hour of any day ([`ANY_TIME`]).
    pub fn any_time(self, campaign: &str) -> TestConfig {
        self.campaign_key(campaign, "send_window", ANY_TIME)
    }

    pub fn timezone(self, zone: &str) -> TestConfig {
        self.set_str("", "default_timezone", zone)
    }

    pub fn templates_dir(self, dir: &Path) -> TestConfig {
        self.set_str("", "templates_dir", &dir.display().to_string())
    }

    /// `[log]`: its `level` (and the default format).
    pub fn log(self, format: Option<&str>, level: &str) -> TestConfig {
        let config = match format {
            Some(format) => self.set_str("log", "format", format),
            None => self,
        };
        config.set_str("log", "level", level)
    }

    /// The `file` transport: every message an .eml file in `outbox`.
    pub fn file_transport(self, outbox: &str) -> TestConfig {
        self.set_str("transport", "kind", "file")
            .set_str("transport", "outbox", outbox)
    }

    /// The `smtp` transport to a test server on 127.0.0.1:`port`, plain text, `pool_size`
    /// connections.
    pub fn smtp(self, port: u16, pool_size: usize) -> TestConfig {
        self.set_str("transport", "kind", "smtp")
            .set_str("transport.smtp", "host", "127.0.0.1")
            .set("transport.smtp", "port", port.to_string())
            .set_str("transport.smtp", "tls", "none")
            .set("transport.smtp", "pool_size", pool_size.to_string())
    }

    /// The TOML text.
    pub fn toml(&self) -> String {
        let mut out = String::new();
        for table in &self.tables {
            if !table.name.is_empty() {
                let (open, close) = if table.array {
                    ("[[", "]]")
                } else {
                    ("[", "]")
                };
                out.push_str(&format!("\n{open}{}{close}\n", table.name));
            }
            for (key, value) in &table.entries {
                out.push_str(&format!("{key} = {value}\n"));
            }
        }
        out
    }

    /// Writes [`TestConfig::toml`] to `path`; returns the path.
    pub fn write(&self, path: &Path) -> std::path::PathBuf {
        std::fs::write(path, self.toml())
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path.to_path_buf()
    }
}
