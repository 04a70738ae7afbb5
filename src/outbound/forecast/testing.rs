//! Settings for the forecast's unit tests: a minimal valid config plus `extra` TOML.

use crate::config::Settings;

/// (One segment, `all`, takes every lead into the first campaign `extra` defines.)
pub fn settings(extra: &str) -> Settings {
    let first = extra
        .split("[campaigns.")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or("none");
    let text = format!(
        r#"database_url = "sqlite://forecast-test.db"
default_timezone = "UTC"
templates_dir = "templates"
[compliance]
postal_address = "1 Example Street, Paris"
[sender]
from = "Claire <claire@acme.example>"
[transport]
kind = "file"
outbox = "outbox"
[http]
public_url = "http://127.0.0.1:8080"
[inbound]
reply_domain = "reply.acme.example"
[[segments]]
name = "all"
campaign = "{first}"
{extra}"#
    );
    Settings::from_toml(&text, "forecast-test.toml").unwrap_or_else(|e| panic!("{e}"))
}
