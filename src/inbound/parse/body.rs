//! The text of a message: its plain-text bodies (HTML turned to text), and what its sender
//! wrote this time — quoted history, attributions, forwarded blocks and signature stripped in
//! English, German, French, Spanish and Dutch.

use mail_parser::Message;

use super::fold::fold;

/// The message's plain-text bodies (HTML turned to text where there is no plain part),
/// joined, with `\n` line ends and no-break spaces made plain.
pub(super) fn body_text(msg: &Message<'_>) -> String {
    let mut out = String::new();
    for i in 0..msg.text_body_count() {
        if let Some(text) = msg.body_text(i) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&text);
        }
    }
    out.replace("\r\n", "\n")
        .replace(['\r'], "\n")
        .replace('\u{a0}', " ")
}

/// The new text of a reply: drops `>`-quoted lines, the attribution line that introduces
/// them ("On … wrote:", "Le … a écrit :", "Am … schrieb …:", "El … escribió:",
/// "Op … schreef …:"), and everything from a signature delimiter (`-- `), an
/// original-message separator, or an Outlook header block ("From: … Sent: …") on.
///
/// An attribution followed by `>` lines only drops those lines, so a bottom-posted or
/// interleaved answer keeps what was written between the quotes; one followed by unquoted
/// history cuts the rest.
pub fn strip_quoted(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    let mut i = 0;
    while let Some(&raw_line) = lines.get(i) {
        let line = raw_line.trim_end();
        let trimmed = line.trim_start();
        if trimmed.starts_with('>') {
            i += 1;
            continue;
        }
        if line == "--" || raw_line.trim_end_matches('\r') == "-- " {
            break;
        }
        if is_separator(trimmed) || is_outlook_header_block(&lines, i) {
            break;
        }
        if let Some(span) = attribution_span(&lines, i) {
            let next = lines.iter().skip(i + span).find(|l| !l.trim().is_empty());
            if next.is_some_and(|l| l.trim_start().starts_with('>')) {
                i += span;
                continue;
            }
            break;
        }
        kept.push(line);
        i += 1;
    }
    let is_filler = |l: &&str| {
        let t = l.trim();
        t.is_empty()
            || t.chars()
                .all(|c| c == '_' || c == '-' || c == '=' || c == '*')
    };
    while kept.last().is_some_and(is_filler) {
        kept.pop();
    }
    let start = kept
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(kept.len());
    kept[start..].join("\n")
}

/// "-----Original Message-----" and its translations, forwarded-message markers, and the
/// lines that introduce a bounced message's copy.
pub(super) fn is_separator(trimmed: &str) -> bool {
    if trimmed.len() > 120 {
        return false;
    }
    let folded = fold(trimmed);
    let dashed = folded.starts_with("---") || folded.starts_with("___");
    const MARKERS: &[&str] = &[
        "original message",
        "ursprungliche nachricht",
        "ursprunglichen nachricht",
        "returned mail",
        "original-nachricht",
        "urspr. nachricht",
        "message d'origine",
        "message original",
        "mensaje original",
        "oorspronkelijk bericht",
        "origineel bericht",
        "forwarded message",
        "weitergeleitete nachricht",
        "message transfere",
        "mensaje reenviado",
        "doorgestuurd bericht",
    ];
    (dashed && MARKERS.iter().any(|m| folded.contains(m)))
        || folded.starts_with("begin forwarded message")
        || folded.contains("this is a copy of the message")
        || folded.contains("below this line is a copy of the message")
        || folded.starts_with("original message headers")
        || folded.contains("unsent message follows")
        || folded.starts_with("original message follows")
}

/// An Outlook-style block: a "From:" line followed within four lines by a "Sent:"/"Date:"
/// line (or their German, French, Spanish, Dutch forms).
fn is_outlook_header_block(lines: &[&str], i: usize) -> bool {
    fn label(line: &str) -> String {
        let start: String = line
            .trim()
            .trim_start_matches('*')
            .chars()
            .take(24)
            .collect();
        fold(&start)
    }
    const FROM: &[&str] = &["from:", "von:", "de :", "de:", "van:"];
    const SENT: &[&str] = &[
        "sent:",
        "date:",
        "gesendet:",
        "datum:",
        "envoye :",
        "envoye:",
        "date :",
        "enviado:",
        "enviado el:",
        "fecha:",
        "verzonden:",
        "verstuurd:",
    ];
    let Some(first) = lines.get(i) else {
        return false;
    };
    let first = label(first);
    if !FROM.iter().any(|f| first.starts_with(f)) {
        return false;
    }
    lines
        .iter()
        .skip(i + 1)
        .take(4)
        .any(|l| SENT.iter().any(|s| label(l).starts_with(s)))
}

/// How many lines (1 to 3, for wrapped ones) the attribution starting at line `i` spans.
fn attribution_span(lines: &[&str], i: usize) -> Option<usize> {
    let first = lines.get(i)?.trim();
    if first.is_empty() || first.len() > 300 {
        return None;
    }
    let mut joined = String::new();
    for span in 1..=3 {
        let line = lines.get(i + span - 1)?.trim();
        if line.is_empty() || line.starts_with('>') || joined.len() > 300 {
            return None;
        }
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(line);
        if is_attribution(&joined) {
            return Some(span);
        }
        // Only a line that opens like an attribution may wrap onto the next.
        let f = fold(first);
        if !["on ", "le ", "am ", "el ", "op "]
            .iter()
            .any(|o| f.starts_with(o))
        {
            return None;
        }
    }
    None
}

fn is_attribution(line: &str) -> bool {
    let f = fold(line);
    let f = f.trim_end();
    let ends_colon = f.ends_with(':');
    (f.starts_with("on ") && f.ends_with("wrote:"))
        || (f.starts_with("le ") && (f.ends_with("a ecrit :") || f.ends_with("a ecrit:")))
        || (f.starts_with("am ") && f.contains("schrieb") && ends_colon)
        || (f.starts_with("el ") && f.contains("escribio") && ends_colon)
        || (f.starts_with("op ") && f.contains("schreef") && ends_colon)
        || ((f.ends_with(" wrote:") || f.ends_with(" schrieb:") || f.ends_with(" escribio:"))
            && (f.contains('@') || f.chars().any(|c| c.is_ascii_digit())))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_stripping_keeps_only_what_was_written_this_time() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "gmail attribution on one line",
                "Yes, call me.\n\nOn Tue, Mar 3, 2026 at 10:00 AM Acme <sales@acme.example> wrote:\n> Hello Ann\n> unsubscribe here\n",
                "Yes, call me.",
            ),
            (
                "gmail attribution wrapped over two lines",
                "Sounds good\n\nOn Tue, Mar 3, 2026 at 10:00 AM Acme Sales <\nsales@acme.example> wrote:\n\n> Hello\n",
                "Sounds good",
            ),
            (
                "apple mail",
                "Thursday works.\n\nSent from my iPhone\n\n> On 3 Mar 2026, at 10:15, Acme Sales <sales@acme.example> wrote:\n> \n> Hi\n",
                "Thursday works.\n\nSent from my iPhone",
            ),
            (
                "french",
                "Oui, merci.\n\nLe mar. 3 mars 2026 à 10:00, Acme <sales@acme.example> a écrit :\n> Bonjour\n",
                "Oui, merci.",
            ),
            (
                "german",
                "Gerne.\n\nAm Di., 3. März 2026 um 10:00 Uhr schrieb Acme <sales@acme.example>:\n> Hallo\n",
                "Gerne.",
            ),
            (
                "spanish",
                "Claro.\n\nEl mar, 3 mar 2026 a las 10:00, Acme (<sales@acme.example>) escribió:\n> Hola\n",
                "Claro.",
            ),
            (
                "dutch",
                "Prima.\n\nOp di 3 mrt. 2026 om 10:00 schreef Acme <sales@acme.example>:\n> Hallo\n",
                "Prima.",
            ),
            (
                "outlook block with underscores",
                "Please send the price list.\n\n________________________________\nFrom: Acme Sales <sales@acme.example>\nSent: Tuesday, March 3, 2026 10:00 AM\nTo: Bob\nSubject: Hello\n\nHello Bob, unsubscribe: https://x\n",
                "Please send the price list.",
            ),
            (
                "outlook original message separator",
                "Later this year.\n-----Original Message-----\nFrom: sales@acme.example\nunsubscribe\n",
                "Later this year.",
            ),
            (
                "german outlook block",
                "Danke.\n\nVon: Acme Sales <sales@acme.example>\nGesendet: Dienstag, 3. März 2026 10:00\nAn: Bob\n",
                "Danke.",
            ),
            (
                "bold outlook labels",
                "Ok.\n\n*From:* Acme <sales@acme.example>\n*Sent:* Tuesday\n",
                "Ok.",
            ),
            (
                "signature",
                "Call me Monday.\n\n-- \nAnn Example\nHead of Sales\n",
                "Call me Monday.",
            ),
            (
                "interleaved answers keep what is between the quotes",
                "On Tue, Mar 3, 2026 at 10:00 AM Acme <sales@acme.example> wrote:\n> Would Tuesday work?\nYes.\n> Shall we invite your CTO?\nNo, just me.\n",
                "Yes.\nNo, just me.",
            ),
            (
                "bare quoted lines",
                "Fine by me.\n> earlier text\n>> older text\n",
                "Fine by me.",
            ),
            (
                "attribution followed by unquoted history cuts the rest",
                "Thanks!\nOn Mon, Mar 2, 2026, Acme <sales@acme.example> wrote:\nHello there\nunsubscribe\n",
                "Thanks!",
            ),
            (
                "nothing to strip",
                "Just text\nover two lines",
                "Just text\nover two lines",
            ),
            (
                "a line that merely starts with 'On' stays",
                "On Monday I am free.\nSee you.",
                "On Monday I am free.\nSee you.",
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(strip_quoted(input), *expected, "{name}");
        }
    }
}
