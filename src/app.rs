//! Wiring: the loaded configuration and templates (swapped whole on reload), the store and
//! the transport, shared by the scheduler, the dispatcher and the CLI.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use anyhow::Context as _;

use crate::config::{Settings, TransportSettings};
use crate::outbound::render::Templates;
use crate::secret::Secret;
use crate::store::Store;
use crate::tokens::TokenKeys;
use crate::transport::limits::Limiter;

/// Locks the limiter; its state stays usable even if a holder panicked.
pub fn lock(limiter: &Mutex<Limiter>) -> MutexGuard<'_, Limiter> {
    limiter
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
use crate::transport::Transport;
use crate::transport::file::FileTransport;
use crate::transport::smtp::{SmtpPool, SmtpSettings};

/// A configuration and the templates it names, loaded and checked together, with the keys
/// that sign its links.
pub struct Loaded {
    pub settings: Settings,
    pub templates: Templates,
    pub keys: TokenKeys,
    /// The transport's sending limits and their state (kept across reloads), if configured.
    pub limiter: Option<Arc<Mutex<Limiter>>>,
    /// DKIM signing, if configured.
    pub dkim: Option<Arc<lettre::message::dkim::DkimConfig>>,
    /// The transport's circuit breaker (kept across reloads).
    pub gate: crate::outbound::pause::TransportGate,
}

impl Loaded {
    /// Loads and validates the config file and its templates; unknown template names are errors.
    pub fn load(config: &Path) -> anyhow::Result<Loaded> {
        let settings = Settings::load(config)?;
        Self::with_settings(settings)
    }

    pub fn with_settings(settings: Settings) -> anyhow::Result<Loaded> {
        let templates = Templates::load(&settings.templates_dir)?;
        let missing: Vec<String> = settings
            .campaigns
            .values()
            .flat_map(|c| {
                c.email_templates()
                    .map(|(_, t)| t)
                    .filter(|t| !templates.has(t))
                    .map(move |t| format!("campaigns.{}.templates: unknown template `{t}`", c.name))
            })
            .collect();
        if !missing.is_empty() {
            anyhow::bail!(
                "{}: {} (templates found in {}: {})",
                settings.file.display(),
                missing.join("; "),
                settings.templates_dir.display(),
                templates
                    .names()
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let keys = match configured_keys(&settings)? {
            Some(keys) => keys,
            None => {
                // Without configured keys and without a database (tests, `check`), links are
                // signed with a key that lives as long as this process.
                let key: String = (0..48)
                    .map(|_| char::from(b'a' + rand::random::<u8>() % 26))
                    .collect();
                TokenKeys::new(vec![("tmp".into(), Secret::new(key))])?
            }
        };
        let limiter = settings
            .limits
            .clone()
            .map(|l| Arc::new(Mutex::new(Limiter::new(l))));
        let dkim = settings
            .dkim
            .as_ref()
            .map(dkim_config)
            .transpose()?
            .map(Arc::new);
        let gate = crate::outbound::pause::TransportGate::new(settings.breaker);
        Ok(Loaded {
            settings,
            templates,
            keys,
            limiter,
            dkim,
            gate,
        })
    }

    /// Keeps the sending-limit state of `old` (counts, slowed-down domains) under the new
    /// limits, and its transport breaker (a paused transport stays paused) under the new
    /// breaker settings.
    pub fn keep_limiter_of(&mut self, old: &Loaded) {
        old.gate.update_settings(self.settings.breaker);
        self.gate = old.gate.clone();
        if let (Some(old), Some(limits)) = (&old.limiter, &self.settings.limits) {
            lock(old).update_settings(limits.clone());
            self.limiter = Some(Arc::clone(old));
        }
    }

    /// Like `with_settings`, and without configured keys the signing key is the one kept in
    /// the database (generated on first use), so links in sent emails keep working.
    pub async fn with_store<S: Store>(settings: Settings, store: &S) -> anyhow::Result<Loaded> {
        let stored = match configured_keys(&settings)? {
            Some(_) => None,
            None => {
                let key = store
                    .secret("token_key_db1", || {
                        (0..48)
                            .map(|_| char::from(b'a' + rand::random::<u8>() % 26))
                            .collect()
                    })
                    .await
                    .context("Failed to read the token signing key from the database")?;
                Some(TokenKeys::new(vec![("db1".into(), Secret::new(key))])?)
            }
        };
        let mut loaded = Self::with_settings(settings)?;
        if let Some(keys) = stored {
            loaded.keys = keys;
        }
        Ok(loaded)
    }

    /// The message builder for this configuration.
    pub fn composer(&self) -> crate::outbound::compose::Composer<'_> {
        crate::outbound::compose::Composer::new(
            &self.settings,
            &self.templates,
            &self.keys,
            self.dkim.as_deref(),
        )
    }
}

/// The DKIM signer: signs From, To, Subject, Date, Message-ID, Reply-To and both
/// List-Unsubscribe headers (relaxed/relaxed canonicalisation).
fn dkim_config(
    d: &crate::config::DkimSettings,
) -> anyhow::Result<lettre::message::dkim::DkimConfig> {
    use lettre::message::dkim::{
        DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
        DkimSigningKey,
    };
    use lettre::message::header::HeaderName;
    let pem = Secret::from_env_or_credential(&d.key_env)
        .context("Failed to read the DKIM key (dkim.key_env)")?;
    let algorithm = if d.ed25519 {
        DkimSigningAlgorithm::Ed25519
    } else {
        DkimSigningAlgorithm::Rsa
    };
    let key = DkimSigningKey::new(pem.expose().trim(), algorithm)
        .map_err(|e| anyhow::anyhow!("the DKIM key in `{}` is not a valid {algorithm} key (rsa wants PKCS#1 PEM, BEGIN RSA PRIVATE KEY): {e:?}", d.key_env))?;
    let headers = [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Reply-To",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
    ]
    .into_iter()
    .map(HeaderName::new_from_ascii_str)
    .collect();
    let relaxed = DkimCanonicalization {
        header: DkimCanonicalizationType::Relaxed,
        body: DkimCanonicalizationType::Relaxed,
    };
    Ok(DkimConfig::new(
        d.selector.clone(),
        d.domain.clone(),
        key,
        headers,
        relaxed,
    ))
}

/// The keys named in `[tokens] keys`, read from the environment or systemd credentials.
fn configured_keys(settings: &Settings) -> anyhow::Result<Option<TokenKeys>> {
    if settings.token_keys.is_empty() {
        return Ok(None);
    }
    let keys = settings
        .token_keys
        .iter()
        .map(|(id, env)| Secret::from_env_or_credential(env).map(|s| (id.clone(), s)))
        .collect::<Result<Vec<_>, _>>()
        .context("Failed to read a token signing key")?;
    Ok(Some(TokenKeys::new(keys)?))
}

/// The current configuration; readers clone the `Arc` and never hold the lock across `.await`.
#[derive(Clone)]
pub struct Current(Arc<RwLock<Arc<Loaded>>>);

impl Current {
    pub fn new(loaded: Loaded) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(loaded))))
    }

    pub fn get(&self) -> Arc<Loaded> {
        match self.0.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace(&self, loaded: Loaded) {
        let mut guard = match self.0.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(loaded);
    }
}

/// Builds the configured transport; an SMTP password is read from its named secret.
pub fn build_transport(settings: &Settings) -> anyhow::Result<Transport> {
    Ok(match &settings.transport {
        TransportSettings::File { outbox } => Transport::File(FileTransport::new(outbox.clone())),
        TransportSettings::Smtp(smtp) => {
            let password = smtp
                .password_env
                .as_deref()
                .map(Secret::from_env_or_credential)
                .transpose()
                .context("Failed to read the SMTP password")?;
            Transport::Smtp(SmtpPool::new(SmtpSettings {
                host: smtp.host.clone(),
                port: smtp.port,
                tls: smtp.tls,
                username: smtp.username.clone(),
                password,
                pool_size: smtp.pool_size,
                timeout: smtp.timeout,
                hello_name: smtp.hello_name.clone(),
            }))
        }
        TransportSettings::Api(api) => {
            use crate::config::ApiProvider;
            use crate::transport::api::{mailgun, postmark, sendgrid};
            let key = Secret::from_env_or_credential(&api.key_env)
                .context("Failed to read the API key")?;
            match api.provider {
                ApiProvider::Postmark => {
                    let mut p = postmark::PostmarkSettings::new(key);
                    p.base_url = api.base_url.clone().unwrap_or(p.base_url);
                    p.message_stream = api.message_stream.clone();
                    p.batch_size = api.batch_size.unwrap_or(p.batch_size);
                    p.concurrency = api.concurrency.unwrap_or(p.concurrency);
                    p.timeout = api.timeout.unwrap_or(p.timeout);
                    Transport::Postmark(postmark::PostmarkTransport::new(p)?)
                }
                ApiProvider::SendGrid => {
                    let mut p = sendgrid::SendGridSettings::new(key);
                    p.base_url = api.base_url.clone().unwrap_or(p.base_url);
                    p.concurrency = api.concurrency.unwrap_or(p.concurrency);
                    p.timeout = api.timeout.unwrap_or(p.timeout);
                    Transport::SendGrid(sendgrid::SendGridTransport::new(p)?)
                }
                ApiProvider::Mailgun => {
                    let mut p =
                        mailgun::MailgunSettings::new(key, api.domain.clone().unwrap_or_default());
                    p.base_url = api.base_url.clone().unwrap_or(p.base_url);
                    p.concurrency = api.concurrency.unwrap_or(p.concurrency);
                    p.timeout = api.timeout.unwrap_or(p.timeout);
                    Transport::Mailgun(mailgun::MailgunTransport::new(p)?)
                }
            }
        }
    })
}
