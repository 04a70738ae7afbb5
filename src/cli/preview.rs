//! `rewarm preview --lead EMAIL [--step N]`: one step's email for one lead, rendered and
//! composed by the same code that sends it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::with_store;
use crate::app::Loaded;
use crate::domain::email::EmailAddress;
use crate::domain::segment::first_match;
use crate::store::{LeadStore, Store};

#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// The lead's email.
    #[arg(long)]
    pub lead: String,
    /// The step (1 = the first email).
    #[arg(long, default_value_t = 1)]
    pub step: u32,
    /// The campaign (default: the one the lead's segment picks).
    #[arg(long)]
    pub campaign: Option<String>,
    /// Print the whole RFC 5322 message as it would go on the wire.
    #[arg(long)]
    pub raw: bool,
}

pub async fn preview(
    config: &Path,
    args: PreviewArgs,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let settings = crate::config::Settings::load(config)?;
    let email = EmailAddress::parse(&args.lead)?;
    let (loaded, lead) = with_store!(&settings.database_url.clone(), |store| {
        store.migrate().await?;
        let lead = store.lead_by_email(&email).await?;
        (Loaded::with_store(settings, &store).await?, lead)
    });
    let settings = &loaded.settings;
    let Some(lead) = lead else {
        anyhow::bail!("no lead with email {email} (import it first: rewarm leads import FILE)");
    };
    let campaign = match &args.campaign {
        Some(name) => settings
            .campaigns
            .get(name)
            .with_context(|| format!("no campaign `{name}` in {}", settings.file.display()))?,
        None => {
            let segment = first_match(&settings.segments, &lead, now, settings.default_tz)
                .with_context(|| format!("no segment matches {email} now; pass --campaign NAME"))?;
            settings
                .campaigns
                .get(&segment.campaign)
                .with_context(|| format!("no campaign `{}`", segment.campaign))?
        }
    };
    if args.step == 0 || args.step > campaign.cadence.max_touches {
        anyhow::bail!(
            "campaign `{}` has steps 1 to {}",
            campaign.name,
            campaign.cadence.max_touches
        );
    }
    let step = args.step - 1;
    if let Some(call) = campaign.call_for(step) {
        println!(
            "campaign: {}   step: {} of {}   a call: {} gets no email; its owner ({}) gets a call task",
            campaign.name,
            args.step,
            campaign.cadence.max_touches,
            lead.email,
            lead.owner_email
                .as_deref()
                .unwrap_or("none: notify.fallback_email")
        );
        if let Some(note) = &call.note {
            println!("What to say: {note}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let template = campaign.template_for(step);
    let (rendered, message) = loaded
        .composer()
        .build(&lead, campaign, template, step, 0, now)
        .map_err(anyhow::Error::msg)?;
    if args.raw {
        println!("{}", String::from_utf8_lossy(&message.bytes));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "campaign: {}   step: {} of {}   template: {template}",
        campaign.name, args.step, campaign.cadence.max_touches
    );
    println!("From: {}", settings.sender.from);
    println!("To: {}", lead.email);
    println!("Subject: {}", rendered.subject);
    println!("\n----- text -----\n{}", rendered.text);
    if let Some(html) = &rendered.html {
        println!("\n----- html -----\n{html}");
    }
    Ok(ExitCode::SUCCESS)
}
