//! `[intents]` (and each segment's `intents` table): what each intent of a human reply does,
//! the phrases marketing adds, the default postponement of a `later` and the re-check span of
//! a `not_interested`.

use crate::config::raw::{RawIntent, RawIntents};
use crate::config::{IntentSettings, Problems};
use crate::domain::cadence::Span;
use crate::domain::intent::{Intent, IntentEffect};
use crate::inbound::parse::fold::fold;

pub(super) fn intents(raw: RawIntents, p: &mut Problems) -> IntentSettings {
    let mut settings = IntentSettings::default();
    let span = |key: &str, value: Option<&String>, default: Span, p: &mut Problems| match value {
        None => default,
        Some(v) => match Span::parse(v) {
            Ok(s) if !s.is_zero() => s,
            Ok(_) => {
                p.err(key, "must be longer than zero".into());
                default
            }
            Err(e) => {
                p.err(key, e.to_string());
                default
            }
        },
    };
    settings.postpone = span(
        "intents.postpone",
        raw.postpone.as_ref(),
        settings.postpone,
        p,
    );
    settings.recheck_after = span(
        "intents.recheck_after",
        raw.recheck_after.as_ref(),
        settings.recheck_after,
        p,
    );
    let each = [
        (Intent::Interested, raw.interested),
        (Intent::Question, raw.question),
        (Intent::Later, raw.later),
        (Intent::NotInterested, raw.not_interested),
        (Intent::LeftCompany, raw.left_company),
        (Intent::WrongPerson, raw.wrong_person),
        (Intent::Unclear, raw.unclear),
    ];
    for (intent, raw) in each {
        let Some(RawIntent { effect, phrases }) = raw else {
            continue;
        };
        let key = |k: &str| format!("intents.{intent}.{k}");
        if let Some(effect) = effect {
            match effect_named(&effect) {
                Ok(e) => {
                    settings.effects.insert(intent, e);
                }
                Err(e) => p.err(&key("effect"), e),
            }
        }
        let mut folded = Vec::new();
        for (n, phrase) in phrases.iter().enumerate() {
            let f = fold(phrase.trim());
            if f.chars().filter(|c| c.is_alphanumeric()).count() < 3 {
                p.err(
                    &format!("{}[{n}]", key("phrases")),
                    format!("`{phrase}` is too short to match on (3 letters at least)"),
                );
            } else {
                folded.push(f);
            }
        }
        if !folded.is_empty() {
            settings.phrases.push((intent, folded));
        }
    }
    settings
}

fn effect_named(name: &str) -> Result<IntentEffect, String> {
    IntentEffect::parse(name).ok_or_else(|| {
        let known: Vec<&str> = IntentEffect::ALL.iter().map(|e| e.as_str()).collect();
        format!("unknown effect `{name}` (use one of: {})", known.join(", "))
    })
}

/// A segment's `intents` entry: `later = "rewarm"`.
pub(super) fn intent_and_effect(
    intent: &str,
    effect: &str,
) -> Result<(Intent, IntentEffect), String> {
    let i = Intent::parse(intent).ok_or_else(|| {
        let known: Vec<&str> = Intent::ALL.iter().map(|i| i.as_str()).collect();
        format!(
            "unknown intent `{intent}` (use one of: {})",
            known.join(", ")
        )
    })?;
    Ok((i, effect_named(effect)?))
}
