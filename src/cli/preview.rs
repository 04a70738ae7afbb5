//! `rewarm preview --lead EMAIL [--step N]`: one step's email for one lead, rendered and
//! composed by the same code that sends it (`outbound::preview`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::with_store;
use crate::app::Loaded;
use crate::domain::email::EmailAddress;
use crate::outbound::preview::{Preview, preview as render};
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
    match render(&loaded, &lead, args.campaign.as_deref(), args.step, now)? {
        Preview::Call {
            campaign,
            step,
            of,
            note,
        } => {
            println!(
                "campaign: {campaign}   step: {step} of {of}   a call: {} gets no email; its owner ({}) gets a call task",
                lead.email,
                lead.owner_email
                    .as_deref()
                    .unwrap_or("none: notify.fallback_email")
            );
            if let Some(note) = &note {
                println!("What to say: {note}");
            }
        }
        Preview::Email { message, .. } if args.raw => {
            println!("{}", String::from_utf8_lossy(&message.bytes));
        }
        Preview::Email {
            campaign,
            step,
            of,
            template,
            rendered,
            ..
        } => {
            println!("campaign: {campaign}   step: {step} of {of}   template: {template}");
            println!("From: {}", settings.sender.from);
            println!("To: {}", lead.email);
            println!("Subject: {}", rendered.subject);
            println!("\n----- text -----\n{}", rendered.text);
            if let Some(html) = &rendered.html {
                println!("\n----- html -----\n{html}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
