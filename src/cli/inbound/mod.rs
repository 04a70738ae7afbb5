//! `rewarm inbound replay FILE.eml... [--dry-run]`: raw RFC 5322 messages through exactly the
//! path IMAP and the webhooks use (`inbound::process`). `rewarm inbound list` and
//! `rewarm inbound show ID [--raw]`: the kept messages (matched or not) for review.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::leads::span_before;
use super::with_store;
use crate::app::Loaded;
use crate::config::Settings;
use crate::domain::reply::Classification;
use crate::store::Store;

mod explain;
mod replay;
mod review;

pub use replay::{replay, replay_key};
pub use review::{Filter, list, show};

#[derive(Debug, clap::Subcommand)]
pub enum InboundCommand {
    /// Runs saved messages (.eml) through matching, classification and their effects.
    Replay {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Change nothing; print one JSON object per file:
        /// {"file", "classification", "intent", "lead"}.
        #[arg(long)]
        dry_run: bool,
    },
    /// Inbound messages (matched or not), newest first: id, received, classification, lead,
    /// matched by, from, subject.
    List {
        /// Only messages that matched no lead.
        #[arg(long)]
        unmatched: bool,
        /// Only messages of this classification.
        #[arg(long = "class", value_name = "CLASSIFICATION", value_parser = classification())]
        class: Option<Classification>,
        /// Only messages received this recently ("7d", "2w", "3mo", "12h"); default: all.
        #[arg(long)]
        since: Option<String>,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Which rule decided a saved message's classification and (a person's reply) its
    /// intent, with the phrase, named moment, referrals and effect. Changes nothing.
    Explain { file: PathBuf },
    /// One inbound message: its fields, extracted text and effects.
    Show {
        /// Its id (the first column of `inbound list`).
        id: i64,
        /// Print the message's bytes exactly as received instead (`--raw > msg.eml`).
        #[arg(long)]
        raw: bool,
    },
}

/// `--class` takes exactly the stored names; clap lists them on a mistake and in `--help`.
fn classification() -> impl clap::builder::TypedValueParser<Value = Classification> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(Classification::ALL.map(Classification::as_str))
        .map(|name| Classification::parse(&name).expect("every possible value is a name"))
}

pub async fn inbound(
    config: &Path,
    cmd: InboundCommand,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    if let InboundCommand::Explain { file } = &cmd {
        let loaded = Loaded::load(config)?;
        return explain::explain(&loaded, file, now);
    }
    let settings = Settings::load(config)?;
    // A bad `--since` fails before the database is opened.
    let filter = match &cmd {
        InboundCommand::List {
            unmatched,
            class,
            since,
            ..
        } => Some(Filter {
            unmatched: *unmatched,
            class: *class,
            since: since
                .as_deref()
                .map(|s| span_before(s, now).context("invalid --since"))
                .transpose()?,
        }),
        _ => None,
    };
    with_store!(&settings.database_url, |store| {
        store.migrate().await?;
        match cmd {
            InboundCommand::Replay { files, dry_run } => {
                let loaded = Loaded::with_store(settings, &store).await?;
                replay(&store, &loaded, &files, dry_run, now).await
            }
            InboundCommand::List { json, .. } => {
                let filter = filter.expect("set for `list` above");
                list(&store, &filter, json).await
            }
            InboundCommand::Show { id, raw } => show(&store, id, raw).await,
            InboundCommand::Explain { .. } => unreachable!("explained above, without a store"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_classification_is_a_possible_class_and_nothing_else_is() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Args {
            #[arg(long = "class", value_parser = classification())]
            class: Classification,
        }
        for c in Classification::ALL {
            let args = Args::try_parse_from(["x", "--class", c.as_str()]).unwrap();
            assert_eq!(args.class, c);
        }
        let err = Args::try_parse_from(["x", "--class", "nonsense"])
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("hard_bounce") && err.contains("human_reply"),
            "{err}"
        );
    }
}
