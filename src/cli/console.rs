//! `rewarm console invite EMAIL --role ROLE` and `console users`: who may use the web
//! console (docs/console.md). Lead owners need no invitation: they are `sales` users.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::with_store;
use crate::app::{Loaded, build_transport};
use crate::config::Settings;
use crate::console::Role;
use crate::domain::email::EmailAddress;
use crate::store::Store;
use crate::transport::Transport;

#[derive(Debug, clap::Subcommand)]
pub enum ConsoleCommand {
    /// Invite someone (or change their role) and email them a single-use sign-in link
    /// through the configured transport, at once.
    Invite {
        email: String,
        /// admin (everything, inviting), marketing (everything but inviting and config),
        /// sales (their own leads).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Who invites (logged with the invitation).
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Everyone invited, with their role (lead owners are sales users without a row).
    Users,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("`{s}` is not a role: use admin, marketing or sales"))
}

pub async fn console(
    config: &Path,
    cmd: ConsoleCommand,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    with_store!(&settings.database_url, |store| {
        store.migrate().await?;
        run(&store, settings, cmd, now).await
    })
}

async fn run<S: Store>(
    store: &S,
    settings: Settings,
    cmd: ConsoleCommand,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    match cmd {
        ConsoleCommand::Invite { email, role, by } => {
            let address = EmailAddress::parse(email.trim())
                .map_err(|e| anyhow::anyhow!("`{email}` is not an email address: {e}"))?;
            if !settings.console.enabled {
                eprintln!(
                    "note: [console] enabled is false in {}: the link works once it is turned on",
                    settings.file.display()
                );
            }
            let loaded = Loaded::with_store(settings, store).await?;
            let until = crate::console::signin::invite(store, &loaded, &address, role, &by, now)
                .await
                .context("Failed to store the invitation")?;
            let transport = build_transport(&loaded.settings)?;
            let report = crate::notify::deliver_due(store, &loaded, &transport, now, "cli-console")
                .await
                .context("Failed to send the sign-in email")?;
            if let Transport::Smtp(pool) = &transport {
                pool.close().await;
            }
            let lower = address.as_str().to_ascii_lowercase();
            if report.sent > 0 && report.failed == 0 && report.retrying == 0 {
                println!(
                    "invited {lower} as {role}; sign-in link sent (works once, until {})",
                    until.format("%Y-%m-%d %H:%M UTC")
                );
            } else {
                println!(
                    "invited {lower} as {role}; the sign-in email was not sent yet ({} sent, {} to retry, {} failed): the daemon retries it, or ask for a link at {}/console/signin",
                    report.sent, report.retrying, report.failed, loaded.settings.http.public_url
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ConsoleCommand::Users => {
            for user in store.console_users().await? {
                println!(
                    "{}\t{}\tinvited by {} on {}",
                    user.email,
                    user.role,
                    user.invited_by,
                    user.created_at.format("%Y-%m-%d")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
