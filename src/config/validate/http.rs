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
    HttpSettings {
        listen,
        public_url,
        api_token_env: raw.api_token_env,
    }
}
