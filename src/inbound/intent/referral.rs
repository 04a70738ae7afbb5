//! The people a reply hands us: "please reach out to my successor, Dan Brooks
//! (dan.brooks@example.org)", "meine Kollegin Anna Weber kümmert sich darum".
//!
//! Pure. Read from the reply's own text only (quoted history is already gone), so addresses
//! from the thread below never count; the sender's own address and those the caller names
//! (ours, the lead's) are skipped. Each [`Referral`] is an address with the name written next
//! to it — before it ("Dan Brooks <dan@…>", "Dan Brooks (dan@…)", "Dan Brooks: dan@…") or
//! after it in brackets ("dan@… (Dan Brooks)") — or, without an address, a capitalised name
//! after "my colleague", "my successor", "Kollegin", "successeur" … on its own.

use super::super::parse::fold::fold;

/// A person the reply names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Referral {
    pub name: Option<String>,
    /// Lower-cased.
    pub email: Option<String>,
}

/// Words after which the name of a referred person comes (folded).
const ANCHORS: &[&str] = &[
    "colleague",
    "successor",
    "replacement",
    "contact",
    "kollege",
    "kollegin",
    "kollegen",
    "nachfolger",
    "nachfolgerin",
    "collegue",
    "successeur",
    "successeure",
    "contactez",
    "colega",
    "sucesor",
    "sucesora",
    "collega",
    "successore",
    "opvolger",
    "opvolgster",
    "sucessor",
    "sucessora",
    "contatti",
    "contacte",
    "contate",
    "boss",
    "manager",
];

/// Words skipped between an anchor and the name ("my colleague, Mr. Dan Brooks").
const FILLERS: &[&str] = &[
    "is", "ist", "est", "es", "e", "named", "called", "mr", "mrs", "ms", "dr", "herr", "frau", "m",
    "mme", "sr", "sra", "sig", "sig.ra", "dhr", "mevr", "please", "bitte",
];

/// Lower-case words allowed inside a name ("Anna van Dijk", "José da Silva").
const PARTICLES: &[&str] = &[
    "van", "von", "de", "der", "den", "da", "di", "dos", "das", "del", "la", "le", "du", "zu",
];

/// The people `text` names. `exclude`: addresses never taken (the sender's, ours, the
/// lead's), compared case-insensitively.
pub fn referrals(text: &str, exclude: &[&str]) -> Vec<Referral> {
    let mut out: Vec<Referral> = Vec::new();
    for line in text.lines().take(200) {
        let mut named_here = false;
        for (start, end) in addresses(line) {
            let email = line[start..end].to_ascii_lowercase();
            if exclude.iter().any(|x| x.eq_ignore_ascii_case(&email))
                || out
                    .iter()
                    .any(|r| r.email.as_deref() == Some(email.as_str()))
            {
                continue;
            }
            let name = name_before(&line[..start])
                .or_else(|| name_in_brackets_after(&line[end..]))
                .or_else(|| name_after_anchor(line));
            named_here = true;
            out.push(Referral {
                name,
                email: Some(email),
            });
        }
        if !named_here
            && let Some(name) = name_after_anchor(line)
            && !out.iter().any(|r| r.name.as_deref() == Some(name.as_str()))
        {
            out.push(Referral {
                name: Some(name),
                email: None,
            });
        }
    }
    // A name first given alone and then with its address on a later line is one person.
    let with_address: Vec<String> = out
        .iter()
        .filter(|r| r.email.is_some())
        .filter_map(|r| r.name.clone())
        .collect();
    out.retain(|r| r.email.is_some() || r.name.as_ref().is_none_or(|n| !with_address.contains(n)));
    out
}

/// Byte ranges of the email addresses in `line`.
fn addresses(line: &str) -> Vec<(usize, usize)> {
    let bytes = line.as_bytes();
    let is_local = |b: u8| b.is_ascii_alphanumeric() || b"._%+-'".contains(&b);
    let is_domain = |b: u8| b.is_ascii_alphanumeric() || b".-".contains(&b);
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'@' {
            i += 1;
            continue;
        }
        let mut start = i;
        while start > 0 && is_local(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = i + 1;
        while end < bytes.len() && is_domain(bytes[end]) {
            end += 1;
        }
        while start < i && !bytes[start].is_ascii_alphanumeric() {
            start += 1;
        }
        while end > i + 1 && !bytes[end - 1].is_ascii_alphanumeric() {
            end -= 1;
        }
        let domain = &line[i + 1..end];
        // "mailto:" before the address is not part of it.
        let local = &line[start..i];
        let local = local.rsplit(':').next().unwrap_or(local);
        let start = i - local.len();
        if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') {
            out.push((start, end));
        }
        i = end.max(i + 1);
    }
    out
}

/// Whether `word` can be part of a name: capitalised, letters (and `-`, `'`) only.
fn is_name_word(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(char::is_uppercase)
        && word
            .chars()
            .all(|c| c.is_alphabetic() || c == '-' || c == '\'')
        && word.chars().skip(1).any(char::is_lowercase)
}

/// The capitalised words just before an address ("… successor, Dan Brooks (").
fn name_before(before: &str) -> Option<String> {
    let trimmed = before.trim_end_matches(|c: char| {
        c.is_whitespace() || matches!(c, '(' | '<' | '[' | ':' | '-' | '–' | ',' | '"')
    });
    let trimmed = trimmed
        .strip_suffix(" at")
        .or_else(|| trimmed.strip_suffix(" unter"))
        .or_else(|| trimmed.strip_suffix(" via"))
        .unwrap_or(trimmed)
        .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '(' | ',' | '"'));
    let words: Vec<&str> = trimmed.split_whitespace().collect();
    let mut name: Vec<&str> = Vec::new();
    for raw in words.iter().rev() {
        // "Head of RevOps, Tom Baker": a name does not run on past punctuation.
        if !name.is_empty() && raw.ends_with([',', ':', ';', '.', ')']) {
            break;
        }
        let word = raw.trim_matches(|c: char| matches!(c, '"' | '\'' | ',' | '(' | ')'));
        if FILLERS.contains(&fold(word).trim_end_matches('.')) {
            break;
        }
        if is_name_word(word) || (!name.is_empty() && PARTICLES.contains(&word)) {
            name.push(word);
            if name.len() == 4 {
                break;
            }
        } else {
            break;
        }
    }
    while name.last().is_some_and(|w| PARTICLES.contains(w)) {
        name.pop();
    }
    name.reverse();
    // A capitalised word at a sentence start ("Contact Anna Weber <…>") is no name.
    while name
        .first()
        .is_some_and(|w| is_sentence_word(w) || ANCHORS.contains(&fold(w).as_str()))
    {
        name.remove(0);
    }
    let joined = name.join(" ");
    let anchor_like = name.len() == 1 && ANCHORS.contains(&fold(&joined).as_str());
    (!name.is_empty() && !anchor_like && !is_sentence_word(&joined)).then_some(joined)
}

/// Capitalised words English, German … start a sentence with, which are not names.
fn is_sentence_word(word: &str) -> bool {
    matches!(
        fold(word).as_str(),
        "please"
            | "contact"
            | "email"
            | "e-mail"
            | "mail"
            | "write"
            | "reach"
            | "bitte"
            | "kontakt"
            | "contactez"
            | "ecrivez"
            | "escriba"
            | "scrivete"
            | "mailen"
            | "try"
            | "ask"
            | "cc"
            | "her"
            | "his"
            | "him"
            | "at"
            | "is"
            | "or"
            | "and"
            | "to"
            | "she"
            | "he"
            | "they"
    )
}

/// "(Dan Brooks)" right after an address.
fn name_in_brackets_after(after: &str) -> Option<String> {
    let rest = after.trim_start().strip_prefix('(')?;
    let inner = &rest[..rest.find(')')?];
    let words: Vec<&str> = inner.split_whitespace().collect();
    (!words.is_empty()
        && words.len() <= 4
        && words
            .iter()
            .all(|w| is_name_word(w) || PARTICLES.contains(w)))
    .then(|| words.join(" "))
}

/// The capitalised name after an anchor word on `line` ("my colleague Anna Weber handles").
fn name_after_anchor(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let clean = |w: &str| {
        w.trim_matches(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\''))
            .to_string()
    };
    for (i, word) in words.iter().enumerate() {
        let folded = fold(&clean(word));
        if !ANCHORS.contains(&folded.as_str()) || word.ends_with(['.', ';']) {
            continue;
        }
        let mut j = i + 1;
        while let Some(w) = words.get(j)
            && FILLERS.contains(&fold(&clean(w)).as_str())
        {
            j += 1;
        }
        let mut name: Vec<String> = Vec::new();
        while let Some(w) = words.get(j) {
            let c = clean(w);
            if !(is_name_word(&c) || (!name.is_empty() && PARTICLES.contains(&c.as_str())))
                || is_sentence_word(&c)
            {
                break;
            }
            name.push(c);
            // A name ends at punctuation: "Dan Brooks, who …".
            if w.ends_with([',', '.', ';', ':', ')', '(']) || name.len() == 4 {
                break;
            }
            j += 1;
        }
        while name.last().is_some_and(|w| PARTICLES.contains(&w.as_str())) {
            name.pop();
        }
        if !name.is_empty() {
            return Some(name.join(" "));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: Option<&str>, email: Option<&str>) -> Referral {
        Referral {
            name: name.map(str::to_string),
            email: email.map(str::to_string),
        }
    }

    #[test]
    fn the_successor_of_the_issue_is_found_with_his_name() {
        let text = "I've moved on from Jones & Partners; please reach out to my successor, \
                    Dan Brooks (dan.brooks@example.org)";
        assert_eq!(
            referrals(text, &["mary@jones.example"]),
            vec![r(Some("Dan Brooks"), Some("dan.brooks@example.org"))]
        );
    }

    #[test]
    fn names_before_after_and_in_angle_brackets() {
        assert_eq!(
            referrals("Contact Anna Weber <Anna.Weber@Firma.de> instead.", &[]),
            vec![r(Some("Anna Weber"), Some("anna.weber@firma.de"))]
        );
        assert_eq!(
            referrals("Try ops@acme.example (Pierre Dubois).", &[]),
            vec![r(Some("Pierre Dubois"), Some("ops@acme.example"))]
        );
        assert_eq!(
            referrals("Please write to mailto:jan@bedrijf.nl", &[]),
            vec![r(None, Some("jan@bedrijf.nl"))]
        );
        assert_eq!(
            referrals("Neem contact op met Anna van Dijk: anna@bedrijf.nl", &[]),
            vec![r(Some("Anna van Dijk"), Some("anna@bedrijf.nl"))]
        );
    }

    #[test]
    fn the_sender_and_excluded_addresses_are_not_referrals() {
        assert_eq!(
            referrals(
                "Reach me at Mary@Jones.example or reply+k1@rewarm.example",
                &["mary@jones.example", "reply+k1@rewarm.example"]
            ),
            vec![]
        );
    }

    #[test]
    fn a_colleague_without_an_address_is_recorded_by_name() {
        assert_eq!(
            referrals("Meine Kollegin Anna Weber kümmert sich darum.", &[]),
            vec![r(Some("Anna Weber"), None)]
        );
        assert_eq!(
            referrals("My colleague, Mr. Tom Hardy, handles purchasing.", &[]),
            vec![r(Some("Tom Hardy"), None)]
        );
        assert_eq!(referrals("Thanks, talk soon.", &[]), vec![]);
    }

    #[test]
    fn a_name_given_then_its_address_later_is_one_person() {
        let text = "My successor is Dan Brooks.\nDan Brooks <dan@example.org>";
        assert_eq!(
            referrals(text, &[]),
            vec![r(Some("Dan Brooks"), Some("dan@example.org"))]
        );
    }

    #[test]
    fn odd_text_never_panics() {
        for text in [
            "@",
            "a@",
            "@b.c",
            "x@@y.z",
            "ü@ö.de",
            "(((dan@x.org",
            "é@",
            "—@—.—",
        ] {
            let _ = referrals(text, &[]);
        }
    }
}
