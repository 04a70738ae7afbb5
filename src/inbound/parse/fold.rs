//! Text folded for phrase matching: one spelling across English, German, French, Spanish and
//! Dutch (no case, no diacritics, plain apostrophes and dashes), and whole-word phrase search.

/// Lower-cases and strips the diacritics of Latin letters (é → e, ü → u, ß → ss), turns
/// typographic apostrophes, dashes and odd spaces plain, so phrases can be matched in one
/// spelling across English, German, French, Spanish and Dutch.
pub(crate) fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => out.push('a'),
            'æ' => out.push_str("ae"),
            'ç' => out.push('c'),
            'è' | 'é' | 'ê' | 'ë' => out.push('e'),
            'ì' | 'í' | 'î' | 'ï' => out.push('i'),
            'ñ' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => out.push('o'),
            'œ' => out.push_str("oe"),
            'ù' | 'ú' | 'û' | 'ü' => out.push('u'),
            'ý' | 'ÿ' => out.push('y'),
            'ß' => out.push_str("ss"),
            '\u{2018}' | '\u{2019}' | '\u{201b}' | '\u{2032}' | '`' | '\u{b4}' => out.push('\''),
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' => out.push('-'),
            '\u{a0}' | '\u{2007}' | '\u{202f}' | '\t' => out.push(' '),
            other => out.push(other),
        }
    }
    out
}

/// Whether `phrase` occurs in `folded` as whole words (no letter or digit just before or
/// after it). Both sides must already be folded.
pub(crate) fn contains_phrase(folded: &str, phrase: &str) -> bool {
    phrase_positions(folded, phrase).next().is_some()
}

/// Byte positions where `phrase` occurs in `folded` as whole words.
pub(crate) fn phrase_positions<'a>(
    folded: &'a str,
    phrase: &'a str,
) -> impl Iterator<Item = usize> + 'a {
    folded.match_indices(phrase).filter_map(move |(at, _)| {
        let before_ok = folded[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric() || !phrase.starts_with(char::is_alphanumeric));
        let after_ok = folded[at + phrase.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric() || !phrase.ends_with(char::is_alphanumeric));
        (before_ok && after_ok).then_some(at)
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_and_phrases_match_across_spellings() {
        assert_eq!(
            fold("Réponse AUTOMATIQUE – Straße ’"),
            "reponse automatique - strasse '"
        );
        assert!(contains_phrase("please unsubscribe me.", "unsubscribe"));
        assert!(!contains_phrase("resubscribed", "subscribe"));
        assert!(contains_phrase("rework: ok", "rework:"));
        assert!(!contains_phrase("", "x"));
    }
}
