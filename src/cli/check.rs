//! `rewarm check`: validates the config and the templates, and renders every template for a
//! sample lead and for leads in the database; says what is wrong with file and key.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::config::Settings;
use crate::domain::email::EmailAddress;
use crate::domain::lead::{Lead, LeadState};
use crate::domain::segment::first_match;
use crate::outbound::render::Templates;
use crate::store::sqlite::SqliteStore;
use crate::store::{LeadStore, Store, SuppressionStore};

/// Leads from the database each template is tried on.
const SAMPLE: usize = 200;

/// `rewarm check [--offline]`.
#[derive(Debug, Default, clap::Args)]
pub struct CheckArgs {
    /// Do not check that the secrets the config names are set (for checking a config away
    /// from the machine that runs the daemon).
    #[arg(long)]
    pub offline: bool,
}

pub async fn check(config: &Path, args: CheckArgs, now: DateTime<Utc>) -> anyhow::Result<ExitCode> {
    let mut problems = problems(config, now).await;
    if !args.offline
        && let Ok(settings) = Settings::load(config)
    {
        problems.extend(missing_secrets(&settings));
    }
    for w in warnings(config, now).await {
        eprintln!("warning: {w}");
    }
    if problems.is_empty() {
        println!("{}: ok", config.display());
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            eprintln!("error: {p}");
        }
        eprintln!("{} problem(s) found", problems.len());
        Ok(ExitCode::FAILURE)
    }
}

/// Every secret the configuration names that the daemon could not read (neither an
/// environment variable nor a systemd credential), naming the key that names it.
pub fn missing_secrets(settings: &Settings) -> Vec<String> {
    settings
        .named_secrets()
        .into_iter()
        .filter(|(_, name)| crate::secret::Secret::from_env_or_credential(name).is_err())
        .map(|(key, name)| {
            format!(
                "{}: `{key}`: the secret `{name}` is not set (neither the environment variable nor $CREDENTIALS_DIRECTORY/{name}); set it, or remove the key (`check --offline` skips this)",
                settings.file.display()
            )
        })
        .collect()
}

/// Every problem of the configuration at `config`, each naming its file and key.
pub async fn problems(config: &Path, now: DateTime<Utc>) -> Vec<String> {
    let settings = match Settings::load(config) {
        Ok(s) => s,
        Err(errors) => return errors.0.iter().map(ToString::to_string).collect(),
    };
    let templates = match Templates::load(&settings.templates_dir) {
        Ok(t) => t,
        Err(e) => return vec![e.to_string()],
    };
    let mut problems = Vec::new();
    for campaign in settings.campaigns.values() {
        for (_, name) in campaign.email_templates() {
            if !templates.has(name) {
                problems.push(format!(
                    "{}: `campaigns.{}.templates`: unknown template `{name}` (no {}/{name}/subject.txt and text.txt; known: {})",
                    settings.file.display(),
                    campaign.name,
                    settings.templates_dir.display(),
                    templates.names().iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    let db_leads = database_leads(&settings).await;
    let field_names: std::collections::BTreeSet<String> = db_leads
        .iter()
        .flat_map(|l| l.fields.keys().cloned())
        .collect();
    // With no leads yet, templates are checked against a lead that has every standard value.
    let sample = sample_lead(&settings, field_names);
    // Links are checked with a throwaway key: `check` needs no secrets.
    let loaded = match crate::app::Loaded::with_settings(Settings {
        token_keys: Vec::new(),
        ..settings.clone()
    }) {
        Ok(l) => l,
        Err(e) => return vec![format!("{e:#}")],
    };
    let composer = loaded.composer();
    let file = settings.file.display();
    let mut first_failure: BTreeMap<String, String> = BTreeMap::new();
    for campaign in settings.campaigns.values() {
        for (step, name) in campaign.email_templates() {
            match composer.render(&sample, campaign, name, step, 1, now) {
                Err(e) => {
                    first_failure.entry(name.to_string()).or_insert_with(|| {
                        format!("{e} (for a sample lead with every standard field set)")
                    });
                }
                // The law and mailbox providers want a way out and the sender's address in every email.
                Ok(email) => {
                    let unsubscribe = composer.unsubscribe_url(1);
                    let html = email.html.as_deref().map(crate::outbound::links::unescape);
                    for (part, body) in [
                        ("text.txt", Some(&email.text)),
                        ("html.html", html.as_ref()),
                    ] {
                        let Some(body) = body else { continue };
                        if !body.contains(&unsubscribe) {
                            problems.push(format!("{file}: `campaigns.{}.templates`: template `{name}/{part}` never shows the unsubscribe link (add {{{{ unsubscribe_url }}}})", campaign.name));
                        }
                        if !body.contains(&settings.compliance.postal_address) {
                            problems.push(format!("{file}: `campaigns.{}.templates`: template `{name}/{part}` never shows the postal address (add {{{{ postal_address }}}})", campaign.name));
                        }
                    }
                }
            }
        }
    }
    for lead in &db_leads {
        let Some(segment) = first_match(&settings.segments, lead, now, settings.default_tz) else {
            continue;
        };
        let Some(campaign) = settings.campaigns.get(&segment.campaign) else {
            continue;
        };
        for (step, name) in campaign.email_templates() {
            if let Err(e) = composer.render(lead, campaign, name, step, 1, now) {
                first_failure.entry(name.to_string()).or_insert_with(|| {
                    format!(
                        "{e} (for lead {}: a template variable this lead does not have?)",
                        lead.email
                    )
                });
            }
        }
    }
    problems.extend(first_failure.into_values());
    problems
}

/// What is not wrong but may be a mistake: domain entries of the suppression list that
/// silence more than `compliance.confirm_domain_over` leads.
pub async fn warnings(config: &Path, now: DateTime<Utc>) -> Vec<String> {
    let Ok(settings) = Settings::load(config) else {
        return Vec::new();
    };
    let broad = match existing_database(&settings).await {
        Some(store) => store
            .broad_domain_entries(settings.compliance.confirm_domain_over)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let over = settings.compliance.confirm_domain_over;
    let mut out: Vec<String> = broad
        .into_iter()
        .map(|(address, n)| {
            format!("the suppression list's {address} suppresses {n} leads (more than compliance.confirm_domain_over = {over}); if it is a mistake: rewarm suppress remove {address} --restore")
        })
        .collect();
    out.extend(
        plan_warnings(config, &settings, now)
            .await
            .unwrap_or_default(),
    );
    out
}

/// Destructive campaign edits (steps cancelled, leads moved or parked): what `rewarm plan`
/// details. Read from the configured database when it exists (a SQLite file is never
/// created here).
async fn plan_warnings(
    config: &Path,
    settings: &Settings,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    use anyhow::Context as _;
    let url = settings.database_url.as_str();
    if url.starts_with("sqlite:") && existing_database(settings).await.is_none() {
        return Ok(Vec::new());
    }
    let plan = super::with_store!(url, |store| {
        store.migrate().await?;
        crate::outbound::replan::plan::plan(&store, settings, now).await?
    });
    if !plan.is_destructive() {
        return Ok(Vec::new());
    }
    let mut out = plan.warnings();
    out.push(format!(
        "plan: {} (details: rewarm --config {} plan)",
        plan.summary.line(),
        config.display()
    ));
    Ok(out)
}

/// The configured SQLite database, if it exists already (check never creates one).
async fn existing_database(settings: &Settings) -> Option<SqliteStore> {
    let url = &settings.database_url;
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or(path);
    if !Path::new(path).exists() {
        return None;
    }
    let store = SqliteStore::connect(url).await.ok()?;
    store.migrate().await.ok()?;
    Some(store)
}

/// Up to SAMPLE leads from the configured database, if it exists already.
async fn database_leads(settings: &Settings) -> Vec<Lead> {
    let Some(store) = existing_database(settings).await else {
        return Vec::new();
    };
    let mut leads = Vec::new();
    for state in [LeadState::New, LeadState::Nurturing] {
        if let Ok(mut page) = store.leads_in_state(state, 0, SAMPLE).await {
            leads.append(&mut page);
        }
    }
    leads
}

fn sample_lead(settings: &Settings, field_names: std::collections::BTreeSet<String>) -> Lead {
    let now = Utc::now();
    Lead {
        id: 0,
        // Invariant: a constant, valid address.
        email: EmailAddress::parse("sample.lead@example.com").expect("a constant valid address"),
        first_name: Some("Sam".into()),
        last_name: Some("Sample".into()),
        company: Some("Sample Corp".into()),
        title: Some("Head of Operations".into()),
        owner_email: Some("owner@example.com".into()),
        owner_name: Some("Olive Owner".into()),
        lost_reason: Some("no_budget".into()),
        lost_at: Some(now - chrono::Duration::days(120)),
        timezone: Some(settings.default_tz),
        tags: vec!["sample".into()],
        fields: field_names
            .into_iter()
            .map(|k| (k, "sample".to_string()))
            .collect(),
        state: LeadState::Nurturing,
        created_at: now,
        updated_at: now,
    }
}
