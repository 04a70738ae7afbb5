//! What a person's reply means: its [`Intent`] — interested, question, later, not
//! interested, left the company, wrong person, unclear — the moment a `later` names, and the
//! people it refers us to. Pure rules over the reply's own text (quoted history and
//! signature already removed by `parse`); no I/O.
//!
//! The rules, in order (the first that fires decides; [`IntentVerdict::rule`] names it and
//! [`IntentVerdict::evidence`] quotes the phrase):
//!
//! 1. A phrase marketing configured (`[intents.NAME] phrases = […]`) decides its intent.
//! 2. A reply that is only a word or two: "yes", "ok", "ja" → `interested`; "no", "nein" →
//!    `not_interested`; "later", "später", "plus tard" → `later`.
//! 3. "I left the company", "my successor" … → `left_company`.
//! 4. "not the right person", "please contact … instead" … → `wrong_person`.
//! 5. Interest and disinterest together ("interested, but we chose another vendor") →
//!    `unclear`.
//! 6. "Not now" with disinterest ("not interested right now", "not for us at the moment") →
//!    `later`: the door is open.
//! 7. Disinterest alone → `not_interested`, unless the reply names someone else ("no, but my
//!    colleague Anna is looking": mixed → `unclear`, so a person reads it).
//! 8. A named moment weeks away but no "not now", with a request to talk that is soon
//!    ("Thursday", "tomorrow") or not tied to that moment ("we replace our CRM in April.
//!    Let's talk Thursday") → `interested`.
//! 9. "Not now" — a later phrase, or a named moment three weeks or more away ("in
//!    September") — put off explicitly ("not until next year", "erst im September") →
//!    `later`, whatever interest it states; else with interest or a real question ("not now — what does it cost?") or
//!    someone else named → `unclear`; asking to talk at that moment ("let's talk in
//!    September") → `later`; alone → `later`.
//! 10. Interest ("interested", "demo", "budget approved") or asking to talk ("call me",
//!     "let's talk") → `interested`.
//! 11. A question (a question phrase, or a question mark) → `question`.
//! 12. Anything else → `unclear`.
//!
//! An interest phrase right after a negation ("not really interested", "nicht wirklich
//! interessiert") counts as disinterest. Where two phrases overlap the longer one counts
//! ("not interested" is not also "interested"). Ambiguity goes to `unclear` — re-warmed and
//! marked "needs a look" — never silently to `later` or `not_interested`: a wrong `later`
//! hides a hot lead.
//!
//! Referrals ([`referral::referrals`]) and the named moment ([`when::named_moment`]) are read
//! whatever the intent; only `left_company` / `wrong_person` turn referrals into new leads
//! (see `inbound::effect`).

mod phrases;
pub mod referral;
pub mod when;

use chrono::NaiveDate;

use super::parse::fold::{fold, phrase_positions};
pub use crate::domain::intent::{Intent, IntentEffect};
pub use referral::Referral;
pub use when::When;

/// How many characters of the reply's own text the rules read.
const TEXT_LIMIT: usize = 8 * 1024;

/// A reply's intent, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentVerdict {
    pub intent: Intent,
    /// The rule that decided ("later phrase", "interest and disinterest", …).
    pub rule: &'static str,
    /// The phrase that decided it (folded), and its language (`en`, `de`, …, `config`).
    pub evidence: Option<(String, &'static str)>,
    /// The moment the reply names, if any.
    pub when: Option<When>,
    pub referrals: Vec<Referral>,
}

impl IntentVerdict {
    /// The verdict as stored on the reply's events and shown by `inbound explain`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "intent": self.intent,
            "rule": self.rule,
            "phrase": self.evidence.as_ref().map(|(p, _)| p),
            "language": self.evidence.as_ref().map(|(_, l)| l),
            "when": self.when.as_ref().map(|w| w.date),
            "when_phrase": self.when.as_ref().map(|w| &w.phrase),
            "referrals": self.referrals,
        })
    }
}

/// Phrases marketing added per intent (`[intents.NAME] phrases`), folded.
pub type ExtraPhrases = Vec<(Intent, Vec<String>)>;

/// What the reply is about to decide, all matched at once.
#[derive(Debug, Default)]
struct Hits {
    left: Vec<Hit>,
    wrong: Vec<Hit>,
    not_interested: Vec<Hit>,
    later: Vec<Hit>,
    interested: Vec<Hit>,
    contact: Vec<Hit>,
    question: Vec<Hit>,
    colleague: Vec<Hit>,
    temporary: Vec<Hit>,
    defer: Vec<Hit>,
    soon: Vec<Hit>,
}

#[derive(Debug, Clone)]
struct Hit {
    phrase: String,
    lang: &'static str,
    start: usize,
    end: usize,
}

/// The intent of `text` (the reply's own text), received on `received`; `sender` and
/// `exclude` are addresses that are no referral (the sender's, ours).
pub fn intent_of(
    text: &str,
    received: NaiveDate,
    exclude: &[&str],
    extra: &ExtraPhrases,
) -> IntentVerdict {
    let head: String = text.chars().take(TEXT_LIMIT).collect();
    let folded = fold(&head);
    let referrals = referral::referrals(&head, exclude);
    let when = when::named_moment(&folded, received);
    let mut v = decide(
        &folded,
        received,
        when.as_ref(),
        !referrals.is_empty(),
        extra,
    );
    v.when = when;
    v.referrals = referrals;
    v
}

fn verdict(intent: Intent, rule: &'static str, hit: Option<&Hit>) -> IntentVerdict {
    IntentVerdict {
        intent,
        rule,
        evidence: hit.map(|h| (h.phrase.clone(), h.lang)),
        when: None,
        referrals: Vec::new(),
    }
}

fn decide(
    folded: &str,
    received: NaiveDate,
    when: Option<&When>,
    names_someone: bool,
    extra: &ExtraPhrases,
) -> IntentVerdict {
    use Intent::*;
    for (intent, phrases) in extra {
        if let Some(p) = phrases
            .iter()
            .find(|p| phrase_positions(folded, p).next().is_some())
        {
            let hit = Hit {
                phrase: p.clone(),
                lang: "config",
                start: 0,
                end: 0,
            };
            return verdict(*intent, "configured phrase", Some(&hit));
        }
    }
    if let Some((intent, hit)) = whole_reply(folded) {
        return verdict(intent, "the whole reply", Some(&hit));
    }
    let h = hits(folded);
    let first = |v: &[Hit]| v.first().cloned();
    if let Some(hit) = first(&h.left) {
        return verdict(LeftCompany, "left the company", Some(&hit));
    }
    if let Some(hit) = first(&h.wrong) {
        return verdict(WrongPerson, "not the right person", Some(&hit));
    }
    let far_when = when.filter(|w| w.is_far_from(received));
    let later_hit = first(&h.later).or_else(|| {
        far_when.map(|w| Hit {
            phrase: w.phrase.clone(),
            lang: "when",
            start: 0,
            end: 0,
        })
    });
    let someone = names_someone || !h.colleague.is_empty();
    if let Some(no) = first(&h.not_interested) {
        if let Some(yes) = first(&h.interested) {
            let _ = no;
            return verdict(Unclear, "interest and disinterest", Some(&yes));
        }
        if let Some(later) = later_hit.or_else(|| first(&h.temporary)) {
            return verdict(Later, "not now rather than never", Some(&later));
        }
        if someone {
            return verdict(Unclear, "disinterest, but someone else named", Some(&no));
        }
        return verdict(NotInterested, "disinterest", Some(&no));
    }
    // Only a named moment, no "not now": it may be about something else ("we replace our CRM
    // in April — let's talk Thursday"). Asking to talk soon, or before the moment is named,
    // is hot.
    let moment_only = h.later.is_empty();
    let warm = first(&h.interested).or_else(|| first(&h.contact));
    if let (true, Some(hot), Some(w)) = (moment_only, warm.as_ref(), far_when)
        && first(&h.defer).is_none()
        && (!h.soon.is_empty() || (!h.contact.is_empty() && !talks_then(folded, &h.contact, w)))
    {
        let soon = first(&h.soon);
        let rule = if soon.is_some() {
            "asks to talk soon"
        } else {
            "asks to talk; the moment named is about something else"
        };
        return verdict(Interested, rule, Some(soon.as_ref().unwrap_or(hot)));
    }
    if let Some(later) = later_hit {
        if let (Some(defer), Some(_)) = (first(&h.defer), far_when) {
            return verdict(Later, "interest put off to a named moment", Some(&defer));
        }
        if let Some(yes) = first(&h.interested) {
            return verdict(Unclear, "interest, but later", Some(&yes));
        }
        if let Some(q) = first(&h.question) {
            return verdict(Unclear, "a question, but later", Some(&q));
        }
        if someone {
            return verdict(Unclear, "not now, but someone else named", Some(&later));
        }
        let rule = if h.contact.is_empty() {
            "later"
        } else {
            "talk, but later"
        };
        return verdict(Later, rule, Some(&later));
    }
    if let Some(yes) = first(&h.interested) {
        return verdict(Interested, "interest", Some(&yes));
    }
    if let Some(talk) = first(&h.contact) {
        return verdict(Interested, "asks to talk", Some(&talk));
    }
    if let Some(q) = first(&h.question) {
        return verdict(Question, "question phrase", Some(&q));
    }
    if folded.contains('?') {
        let hit = Hit {
            phrase: "?".into(),
            lang: "any",
            start: 0,
            end: 0,
        };
        return verdict(Question, "question mark", Some(&hit));
    }
    verdict(Unclear, "no rule matched", None)
}

/// Whether a contact phrase asks to talk at the named moment: the moment follows it closely
/// ("let's talk in September", "call me after the summer").
fn talks_then(folded: &str, contact: &[Hit], w: &When) -> bool {
    let Some(at) = folded.find(&w.phrase) else {
        return false;
    };
    contact.iter().any(|c| c.end <= at && at - c.end <= 40)
}

/// A reply that is only a word or two (punctuation, greetings and thanks aside).
fn whole_reply(folded: &str) -> Option<(Intent, Hit)> {
    let words: Vec<&str> = folded
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .filter(|w| {
            !matches!(
                *w,
                "thanks"
                    | "thank"
                    | "you"
                    | "danke"
                    | "merci"
                    | "gracias"
                    | "grazie"
                    | "bedankt"
                    | "obrigado"
                    | "obrigada"
                    | "please"
                    | "bitte"
                    | "hi"
                    | "hello"
                    | "hallo"
                    | "cheers"
                    | "best"
                    | "regards"
            )
        })
        .collect();
    if words.is_empty() || words.len() > 3 {
        return None;
    }
    let reply = words.join(" ");
    for (name, options) in phrases::WHOLE_REPLY {
        if options
            .iter()
            .any(|o| o.trim_end_matches('!') == reply || *o == reply)
        {
            let intent = Intent::parse(name)?;
            return Some((
                intent,
                Hit {
                    phrase: reply,
                    lang: "any",
                    start: 0,
                    end: 0,
                },
            ));
        }
    }
    None
}

/// Every phrase of every table found in `folded`; where two overlap the longer one stays,
/// and an interest phrase just after a negation counts as disinterest.
fn hits(folded: &str) -> Hits {
    let find = |table: phrases::Table| -> Vec<Hit> {
        let mut out = Vec::new();
        for (lang, list) in table {
            for phrase in *list {
                for start in phrase_positions(folded, phrase) {
                    out.push(Hit {
                        phrase: (*phrase).to_string(),
                        lang,
                        start,
                        end: start + phrase.len(),
                    });
                }
            }
        }
        out.sort_by_key(|h| h.start);
        out
    };
    let mut h = Hits {
        left: find(phrases::LEFT_COMPANY),
        wrong: find(phrases::WRONG_PERSON),
        not_interested: find(phrases::NOT_INTERESTED),
        later: find(phrases::LATER),
        interested: find(phrases::INTERESTED),
        contact: find(phrases::CONTACT),
        question: find(phrases::QUESTION),
        colleague: find(phrases::COLLEAGUE),
        temporary: find(phrases::TEMPORARY),
        defer: find(phrases::DEFER),
        soon: find(phrases::SOON),
    };
    let (negated, kept): (Vec<Hit>, Vec<Hit>) = std::mem::take(&mut h.interested)
        .into_iter()
        .partition(|hit| negated(folded, hit.start));
    h.interested = kept;
    h.not_interested.extend(negated);
    shadow(&mut h);
    h
}

/// Whether the word before byte `start` is a negation, or an intensifier after one ("not
/// really", "nicht wirklich", "pas vraiment").
fn negated(folded: &str, start: usize) -> bool {
    let mut before = folded[..start]
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .rev();
    match before.next() {
        Some(w) if phrases::NEGATIONS.contains(&w) => true,
        Some(w) if phrases::INTENSIFIERS.contains(&w) => before
            .next()
            .is_some_and(|w| phrases::NEGATIONS.contains(&w)),
        _ => false,
    }
}

/// Drops each hit that lies inside a longer hit of another group ("interested" inside "not
/// interested", "reach out" inside "reach out again").
fn shadow(h: &mut Hits) {
    let all: Vec<Hit> = [
        &h.left,
        &h.wrong,
        &h.not_interested,
        &h.later,
        &h.interested,
        &h.contact,
        &h.question,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    let covered = |hit: &Hit| {
        all.iter().any(|o| {
            o.end - o.start > hit.end - hit.start && o.start <= hit.start && hit.end <= o.end
        })
    };
    for group in [
        &mut h.left,
        &mut h.wrong,
        &mut h.not_interested,
        &mut h.later,
        &mut h.interested,
        &mut h.contact,
        &mut h.question,
    ] {
        group.retain(|hit| !covered(hit));
    }
}

#[cfg(test)]
mod tests;
