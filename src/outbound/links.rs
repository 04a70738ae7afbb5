//! Click tracking: rewrites the links of a rendered email so each goes through our click
//! endpoint. Pure text work, no I/O: the caller says what each link becomes.
//!
//! In HTML only `href="http…"` / `href='http…'` attributes are rewritten (HTML entities in the
//! URL are decoded first and the new URL is escaped again); in plain text, bare `http://` and
//! `https://` URLs are. Links listed in `keep` (the unsubscribe link) are left alone.
//!
//! [`neutralise_unsafe_links`] runs on every HTML part, tracked or not: a link can carry a
//! lead's data (`href="{{ lead.fields.website }}"`), and only `http(s)`, `mailto` and `tel`
//! links — or relative ones — may reach a reader; any other scheme (`javascript:`, `data:`,
//! `vbscript:` …, however spelled or escaped) becomes `#`.

/// Rewrites every link of `text` and `html`; `rewrite(index, url)` gives the new URL. The
/// same URL gets the same index in both parts.
pub fn rewrite(
    text: &str,
    html: Option<&str>,
    keep: &[&str],
    mut rewrite: impl FnMut(u32, &str) -> String,
) -> (String, Option<String>) {
    let mut seen: Vec<String> = Vec::new();
    let mut index_of = |url: &str| -> u32 {
        match seen.iter().position(|u| u == url) {
            Some(i) => i as u32,
            None => {
                seen.push(url.to_string());
                (seen.len() - 1) as u32
            }
        }
    };
    let text = rewrite_text(text, keep, &mut |url| {
        let i = index_of(url);
        rewrite(i, url)
    });
    let html = html.map(|h| {
        rewrite_html(h, keep, &mut |url| {
            let i = index_of(url);
            rewrite(i, url)
        })
    });
    (text, html)
}

fn rewrite_text(text: &str, keep: &[&str], f: &mut dyn FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_url_start(rest) {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\''))
            .unwrap_or(tail.len());
        // Trailing punctuation belongs to the sentence, not the URL.
        let url = tail[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')']);
        if keep.contains(&url) {
            out.push_str(url);
        } else {
            out.push_str(&f(url));
        }
        rest = &tail[url.len()..];
    }
    out.push_str(rest);
    out
}

fn find_url_start(s: &str) -> Option<usize> {
    match (s.find("http://"), s.find("https://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn rewrite_html(html: &str, keep: &[&str], f: &mut dyn FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(pos) = find_href(rest) {
        let (before, after) = rest.split_at(pos);
        out.push_str(before);
        // `after` starts with href= and a quote.
        let quote = after.as_bytes()[5] as char;
        let value_start = 6;
        let Some(len) = after[value_start..].find(quote) else {
            out.push_str(after);
            return out;
        };
        let raw = &after[value_start..value_start + len];
        let url = unescape(raw);
        out.push_str(&after[..value_start]);
        if (url.starts_with("http://") || url.starts_with("https://"))
            && !keep.contains(&url.as_str())
        {
            out.push_str(&escape(&f(&url)));
        } else {
            out.push_str(raw);
        }
        out.push(quote);
        rest = &after[value_start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// Replaces every `href` whose URL has a scheme other than `http`, `https`, `mailto` or `tel`
/// with `#`; returns the HTML and how many links were replaced.
pub fn neutralise_unsafe_links(html: &str) -> (String, usize) {
    let mut replaced = 0;
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(pos) = find_href(rest) {
        let (before, after) = rest.split_at(pos);
        out.push_str(before);
        let quote = after.as_bytes()[5] as char;
        let Some(len) = after[6..].find(quote) else {
            // An unterminated attribute: nothing after it can be a link; drop its value.
            out.push_str(&after[..6]);
            out.push('#');
            return (out, replaced + 1);
        };
        let raw = &after[6..6 + len];
        out.push_str(&after[..6]);
        if is_safe_link(raw) {
            out.push_str(raw);
        } else {
            out.push('#');
            replaced += 1;
        }
        out.push(quote);
        rest = &after[6 + len + 1..];
    }
    out.push_str(rest);
    (out, replaced)
}

/// Whether an `href` value (as written in the HTML) is a link a reader may follow.
fn is_safe_link(raw: &str) -> bool {
    // Browsers decode entities and drop ASCII whitespace and controls inside a scheme
    // (`java&#x09;script:`), so judge what they would see.
    let decoded = decode_entities(raw);
    let squeezed: String = decoded
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    let scheme_end = squeezed.find(':');
    let path_start = squeezed.find(['/', '?', '#']);
    match (scheme_end, path_start) {
        // No scheme: relative, a fragment, or a path.
        (None, _) => true,
        (Some(colon), Some(slash)) if slash < colon => true,
        (Some(colon), _) => matches!(&squeezed[..colon], "http" | "https" | "mailto" | "tel"),
    }
}

/// Decodes the HTML character references a URL may hide a scheme behind (`&#106;`,
/// `&#x6A;`, `&colon;`, `&Tab;`, `&amp;` …); an unknown one is kept as written.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp + 1..];
        let end = tail.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &tail[..e];
            let numeric = |digits: &str, radix| {
                u32::from_str_radix(digits, radix)
                    .ok()
                    .and_then(char::from_u32)
            };
            match name.as_bytes().first() {
                Some(b'#') if name[1..].starts_with(['x', 'X']) => numeric(&name[2..], 16),
                Some(b'#') => numeric(&name[1..], 10),
                _ => match name {
                    "amp" => Some('&'),
                    "colon" => Some(':'),
                    "Tab" => Some('\t'),
                    "NewLine" => Some('\n'),
                    "quot" => Some('"'),
                    "sol" => Some('/'),
                    _ => None,
                },
            }
        });
        match (decoded, end) {
            (Some(c), Some(e)) => {
                out.push(c);
                rest = &tail[e + 1..];
            }
            _ => {
                out.push('&');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Position of the next `href="` or `href='` (case-insensitive).
fn find_href(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("href=") {
        let at = from + i;
        if matches!(lower.as_bytes().get(at + 5), Some(b'"') | Some(b'\'')) {
            return Some(at);
        }
        from = at + 5;
    }
    None
}

pub(crate) fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&#38;", "&")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&quot;", "\"")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(i: u32, url: &str) -> String {
        format!("https://t.example/c/{i}?u={}", url.len())
    }

    #[test]
    fn bare_urls_in_text_are_rewritten_and_punctuation_is_kept() {
        let (text, _) = rewrite(
            "See https://acme.example/pricing. Or http://acme.example/a?b=1, thanks",
            None,
            &[],
            tag,
        );
        assert_eq!(
            text,
            "See https://t.example/c/0?u=28. Or https://t.example/c/1?u=25, thanks"
        );
    }

    #[test]
    fn the_same_url_gets_the_same_index_in_text_and_html() {
        let (text, html) = rewrite(
            "https://acme.example/x",
            Some(
                r#"<a href="https://acme.example/x">x</a> <a href='https://acme.example/y'>y</a>"#,
            ),
            &[],
            |i, _| format!("T{i}"),
        );
        assert_eq!(text, "T0");
        assert_eq!(html.unwrap(), r#"<a href="T0">x</a> <a href='T1'>y</a>"#);
    }

    #[test]
    fn html_entities_are_decoded_before_and_escaped_after() {
        let (_, html) = rewrite(
            "",
            Some(r#"<a HREF="https://a.example/?x=1&amp;y=2">go</a>"#),
            &[],
            |_, url| {
                assert_eq!(url, "https://a.example/?x=1&y=2");
                "https://t.example/c?a=1&b=2".into()
            },
        );
        assert_eq!(
            html.unwrap(),
            r#"<a HREF="https://t.example/c?a=1&amp;b=2">go</a>"#
        );
    }

    #[test]
    fn kept_links_and_non_http_links_are_left_alone() {
        let (text, html) = rewrite(
            "Leave: https://u.example/u/tok",
            Some(
                r##"<a href="mailto:x@y.example">m</a><a href="https://u.example/u/tok">u</a><a href="#top">t</a>"##,
            ),
            &["https://u.example/u/tok"],
            |_, _| "REWRITTEN".into(),
        );
        assert_eq!(text, "Leave: https://u.example/u/tok");
        assert!(!html.unwrap().contains("REWRITTEN"));
    }

    #[test]
    fn only_http_mailto_tel_and_relative_links_survive_however_a_scheme_is_spelled() {
        let html = concat!(
            r#"<a href="javascript:alert(1)">a</a>"#,
            r#"<a href="JavaScript:alert(1)">b</a>"#,
            r#"<a href=" java&#x09;script:alert(1)">c</a>"#,
            r#"<a href='&#106;avascript&#58;alert(1)'>d</a>"#,
            r#"<a href="data:text/html;base64,PHNjcmlwdD4=">e</a>"#,
            r#"<a href="vbscript&colon;msgbox">f</a>"#,
            r#"<a href="https://acme.example/x?a=1&amp;b=2">ok1</a>"#,
            r#"<a href="http://acme.example">ok2</a>"#,
            r#"<a href="mailto:sales@acme.example">ok3</a>"#,
            r#"<a href="tel:+331234">ok4</a>"#,
            r##"<a href="#top">ok5</a>"##,
            r#"<a href="/path/with:colon">ok6</a>"#,
        );
        let (out, replaced) = neutralise_unsafe_links(html);
        assert_eq!(replaced, 6, "{out}");
        assert_eq!(
            out.matches(r##"href="#""##).count() + out.matches("href='#'").count(),
            6,
            "{out}"
        );
        for kept in [
            "https://acme.example/x?a=1&amp;b=2",
            "http://acme.example",
            "mailto:sales@acme.example",
            "tel:+331234",
            "/path/with:colon",
        ] {
            assert!(out.contains(kept), "{kept} kept: {out}");
        }
        assert!(!out.to_ascii_lowercase().contains("script:"), "{out}");
        assert!(!out.contains("data:"), "{out}");
    }

    #[test]
    fn an_unterminated_href_loses_its_value() {
        let (out, replaced) = neutralise_unsafe_links(r#"<a href="javascript:alert(1)"#);
        assert_eq!((out.as_str(), replaced), (r##"<a href="#"##, 1));
    }

    #[test]
    fn text_without_links_and_broken_html_are_returned_unchanged() {
        let (text, html) = rewrite(
            "no links here",
            Some(r#"<a href="https://a.example/ unterminated"#),
            &[],
            |_, _| "X".into(),
        );
        assert_eq!(text, "no links here");
        assert_eq!(html.unwrap(), r#"<a href="https://a.example/ unterminated"#);
    }
}
