//! Click tracking: rewrites the links of a rendered email so each goes through our click
//! endpoint. Pure text work, no I/O: the caller says what each link becomes.
//!
//! In HTML only `href="http…"` / `href='http…'` attributes are rewritten (HTML entities in the
//! URL are decoded first and the new URL is escaped again); in plain text, bare `http://` and
//! `https://` URLs are. Links listed in `keep` (the unsubscribe link) are left alone.

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
