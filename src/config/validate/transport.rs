//! `[transport]` (file, smtp, or an email provider's API) and `[transport.limits]`.

use crate::config::raw::{RawApi, RawBreaker, RawDomainLimit, RawLimits, RawSmtp, RawTransport};
use crate::config::{
    ApiConfig, ApiProvider, Problems, SmtpConfig, TransportSettings, std_duration,
};
use crate::transport::breaker::BreakerSettings;
use crate::transport::limits::LimitSettings;
use crate::transport::smtp::TlsMode;

pub(super) fn transport(
    raw: RawTransport,
    p: &mut Problems,
) -> (TransportSettings, Option<LimitSettings>, BreakerSettings) {
    let transport = match raw.kind.as_str() {
        "file" => TransportSettings::File { outbox: raw.outbox },
        "smtp" => smtp(raw.smtp, p),
        kind @ ("postmark" | "sendgrid" | "mailgun") => {
            let provider = match kind {
                "postmark" => ApiProvider::Postmark,
                "sendgrid" => ApiProvider::SendGrid,
                _ => ApiProvider::Mailgun,
            };
            let section = match provider {
                ApiProvider::Postmark => raw.postmark,
                ApiProvider::SendGrid => raw.sendgrid,
                ApiProvider::Mailgun => raw.mailgun,
            }
            .unwrap_or_default();
            api(kind, provider, section, p)
        }
        other => {
            p.err(
                "transport.kind",
                format!("`{other}` is not a transport (file, smtp, postmark, sendgrid or mailgun)"),
            );
            TransportSettings::File { outbox: raw.outbox }
        }
    };
    let limits = raw.limits.map(|l| limits(l, p));
    (transport, limits, breaker(raw.breaker, p))
}

/// `[transport.breaker]`: defaults 3 faults in a row, first probe after 30 s, at most 10 min.
fn breaker(raw: RawBreaker, p: &mut Problems) -> BreakerSettings {
    let base = BreakerSettings::default();
    let mut duration = |key: &str, value: Option<String>, default: chrono::TimeDelta| match value
        .as_deref()
        .map(crate::config::chrono_duration)
    {
        None => default,
        Some(Ok(d)) if d > chrono::TimeDelta::zero() => d,
        Some(Ok(_)) => {
            p.err(
                &format!("transport.breaker.{key}"),
                "must be longer than 0".into(),
            );
            default
        }
        Some(Err(e)) => {
            p.err(&format!("transport.breaker.{key}"), e);
            default
        }
    };
    let probe_after = duration("probe_after", raw.probe_after, base.probe_after);
    let probe_max = duration("probe_max", raw.probe_max, base.probe_max);
    if probe_max < probe_after {
        p.err(
            "transport.breaker.probe_max",
            "must not be shorter than probe_after".into(),
        );
    }
    let threshold = raw.threshold.unwrap_or(base.threshold);
    if threshold == 0 {
        p.err("transport.breaker.threshold", "must be at least 1".into());
    }
    BreakerSettings {
        threshold: threshold.max(1),
        probe_after,
        probe_max,
    }
}

fn smtp(s: RawSmtp, p: &mut Problems) -> TransportSettings {
    let tls = s.tls.parse::<TlsMode>().unwrap_or_else(|e| {
        p.err("transport.smtp.tls", e);
        TlsMode::None
    });
    let port = s.port.unwrap_or(match tls {
        TlsMode::Tls => 465,
        TlsMode::StartTls => 587,
        TlsMode::None => 25,
    });
    if s.pool_size == 0 {
        p.err("transport.smtp.pool_size", "must be at least 1".into());
    }
    if s.username.is_some() != s.password_env.is_some() {
        p.err("transport.smtp.password_env", "set both `username` and `password_env` (the name of the environment variable or systemd credential holding the password), or neither".into());
    }
    let timeout = std_duration(&s.timeout).unwrap_or_else(|e| {
        p.err("transport.smtp.timeout", e);
        std::time::Duration::from_secs(30)
    });
    TransportSettings::Smtp(SmtpConfig {
        host: s.host,
        port,
        tls,
        username: s.username,
        password_env: s.password_env,
        pool_size: s.pool_size.max(1),
        timeout,
        hello_name: s.hello_name,
    })
}

fn api(kind: &str, provider: ApiProvider, section: RawApi, p: &mut Problems) -> TransportSettings {
    let key = |k: &str| format!("transport.{kind}.{k}");
    let key_env = section.key_env.unwrap_or_else(|| {
        p.err(&key("key_env"), "required: the name of the environment variable or systemd credential holding the API key".into());
        String::new()
    });
    if provider == ApiProvider::Mailgun && section.domain.is_none() {
        p.err(
            &key("domain"),
            "required: the sending domain set up in Mailgun".into(),
        );
    }
    if let Some(url) = &section.base_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        p.err(
            &key("base_url"),
            format!("`{url}` must start with https:// (or http:// for a local test server)"),
        );
    }
    let timeout = section
        .timeout
        .as_deref()
        .map(std_duration)
        .transpose()
        .unwrap_or_else(|e| {
            p.err(&key("timeout"), e);
            None
        });
    TransportSettings::Api(ApiConfig {
        provider,
        base_url: section.base_url,
        key_env,
        domain: section.domain,
        message_stream: section.message_stream,
        batch_size: section.batch_size,
        concurrency: section.concurrency,
        timeout,
    })
}

fn limits(l: RawLimits, p: &mut Problems) -> LimitSettings {
    let mut settings = crate::transport::limits::LimitSettings {
        per_second: l.per_second,
        burst: l.burst,
        daily_cap: l.daily_cap,
        ..Default::default()
    };
    let domain_limit = |d: &RawDomainLimit| {
        let base = crate::transport::limits::DomainLimit::default();
        crate::transport::limits::DomainLimit {
            per_second: d.per_second.unwrap_or(base.per_second),
            burst: d.burst.unwrap_or(base.burst),
            concurrency: d.concurrency.unwrap_or(base.concurrency),
            daily_cap: d.daily_cap,
        }
    };
    if let Some(d) = &l.default_domain {
        settings.default_domain = domain_limit(d);
    }
    for (i, d) in l.domain.iter().enumerate() {
        let Some((first, rest)) = d.domains.split_first() else {
            p.err(
                &format!("transport.limits.domain[{i}].domains"),
                "list at least one domain".into(),
            );
            continue;
        };
        let first = first.trim().to_ascii_lowercase();
        settings.domains.insert(first.clone(), domain_limit(d));
        for alias in rest {
            settings
                .aliases
                .insert(alias.trim().to_ascii_lowercase(), first.clone());
        }
    }
    for (k, message) in settings.problems() {
        p.err(&format!("transport.limits.{k}"), message);
    }
    settings
}
