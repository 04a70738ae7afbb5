//! `[http]`: where the daemon listens and the public URL links in emails point to.

use crate::config::raw::RawHttp;
use crate::config::{HttpSettings, Problems};

pub(super) fn http(raw: RawHttp, p: &mut Problems) -> HttpSettings {
    let listen_text = raw.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
    let listen = listen_text
        .parse::<std::net::SocketAddr>()
        .unwrap_or_else(|_| {
            p.err(
                "http.listen",
                format!("`{listen_text}` is not an address:port like 127.0.0.1:8080"),
            );
            std::net::SocketAddr::from(([127, 0, 0, 1], 8080))
        });
    let public_url = raw
        .public_url
        .unwrap_or_else(|| format!("http://{listen}"))
        .trim_end_matches('/')
        .to_string();
    if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
        p.err(
            "http.public_url",
            format!("`{public_url}` must start with http:// or https://"),
        );
    }
    let max_connections = raw.max_connections.unwrap_or(16_384);
    if max_connections == 0 {
        p.err("http.max_connections", "must be at least 1".into());
    }
    let mut duration = |key: &str, value: Option<String>, default: u64| {
        let default = std::time::Duration::from_secs(default);
        match value.as_deref().map(crate::config::std_duration) {
            None => default,
            Some(Ok(d)) if !d.is_zero() => d,
            Some(Ok(_)) => {
                p.err(&format!("http.{key}"), "must be longer than 0".into());
                default
            }
            Some(Err(e)) => {
                p.err(&format!("http.{key}"), e);
                default
            }
        }
    };
    let header_timeout = duration("header_timeout", raw.header_timeout, 10);
    let request_timeout = duration("request_timeout", raw.request_timeout, 30);
    HttpSettings {
        listen,
        public_url,
        api_token_env: raw.api_token_env,
        max_connections: max_connections.max(1),
        header_timeout,
        request_timeout,
    }
}
