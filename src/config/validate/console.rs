//! `[console]`: the web console (off unless `enabled`), its link and session lifetimes and
//! its rate limits.

use crate::config::raw::RawConsole;
use crate::config::{ConsoleSettings, Problems};

pub(super) fn console(raw: RawConsole, p: &mut Problems) -> ConsoleSettings {
    let default = ConsoleSettings::default();
    let mut duration = |key: &str, value: Option<String>, default: std::time::Duration| match value
        .as_deref()
        .map(crate::config::std_duration)
    {
        None => default,
        Some(Ok(d)) if !d.is_zero() => d,
        Some(Ok(_)) => {
            p.err(&format!("console.{key}"), "must be longer than 0".into());
            default
        }
        Some(Err(e)) => {
            p.err(&format!("console.{key}"), e);
            default
        }
    };
    let link_lifetime = duration("link_lifetime", raw.link_lifetime, default.link_lifetime);
    let session_lifetime = duration(
        "session_lifetime",
        raw.session_lifetime,
        default.session_lifetime,
    );
    let mut at_least_one = |key: &str, value: Option<u32>, default: u32| match value {
        Some(0) => {
            p.err(&format!("console.{key}"), "must be at least 1".into());
            default
        }
        Some(n) => n,
        None => default,
    };
    ConsoleSettings {
        enabled: raw.enabled.unwrap_or(false),
        link_lifetime,
        session_lifetime,
        signin_per_hour: at_least_one("signin_per_hour", raw.signin_per_hour, 5),
        actions_per_minute: at_least_one("actions_per_minute", raw.actions_per_minute, 30),
    }
}
