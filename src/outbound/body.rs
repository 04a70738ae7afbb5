//! A rendered text or HTML part, encoded for the wire: byte for byte what lettre's
//! `Body::new(String)` makes of it (the same `Content-Transfer-Encoding`, the same CRLF line
//! ends, the same quoted-printable lines), in two linear passes over bytes.
//!
//! lettre inserts each missing `\r` with `String::insert` (moving the rest of the body once
//! per line) and quoted-printable-encodes char by char; in a send pass that was ~5 % of the
//! samples. Base64 (a body that is more than a third non-printable, such as CJK text) is
//! left to lettre. The property test below holds the two to the same bytes.

use email_encoding::body::Encoding;
use lettre::message::Body;
use lettre::message::header::ContentTransferEncoding;

/// The longest quoted-printable line, without its CRLF (RFC 2045 §6.7; lettre's choice).
const LIMIT: usize = 76;

/// `text` (a rendered part) as lettre would encode it, with lettre's own choice of encoding
/// (`email-encoding`'s, the server not asked for 8BITMIME).
pub fn text_body(text: &str) -> Body {
    match Encoding::choose(text, false) {
        Encoding::SevenBit => {
            Body::dangerous_pre_encoded(crlf(text.as_bytes()), ContentTransferEncoding::SevenBit)
        }
        Encoding::QuotedPrintable => Body::dangerous_pre_encoded(
            quoted_printable(&crlf(text.as_bytes())),
            ContentTransferEncoding::QuotedPrintable,
        ),
        Encoding::Base64 | Encoding::EightBit => Body::new(text.to_owned()),
    }
}

/// Every `\n` not already after a `\r` gets one.
fn crlf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + b.len() / 32 + 2);
    let mut start = 0;
    for i in memchr::memchr_iter(b'\n', b) {
        if i == 0 || b[i - 1] != b'\r' {
            out.extend_from_slice(&b[start..i]);
            out.push(b'\r');
            start = i;
        }
    }
    out.extend_from_slice(&b[start..]);
    out
}

/// The bytes quoted-printable writes as `=XX`: all but tab and printable ASCII, and `=`.
const ESCAPED: [bool; 256] = {
    let mut table = [true; 256];
    let mut c = b' ';
    while c <= b'~' {
        table[c as usize] = c == b'=';
        c += 1;
    }
    table[b'\t' as usize] = false;
    table
};

fn needs_encoding(c: u8) -> bool {
    ESCAPED[usize::from(c)]
}

/// Quoted-printable in text mode (CRLF pairs are line ends), as the `quoted_printable` crate
/// writes it: runs of plain bytes copied whole, a soft break `=` CRLF before a line would pass
/// 76, a space or tab before a line end encoded.
fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut q = Qp {
        out: Vec::with_capacity(input.len() + input.len() / 16 + 8),
        on_line: 0,
        backup: 0,
    };
    let mut was_cr = false;
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        i += 1;
        if was_cr {
            was_cr = false;
            if byte == b'\n' {
                q.trailing_space();
                q.out.extend_from_slice(b"\r\n");
                q.on_line = 0;
                continue;
            }
            q.append(b"=0D");
        }
        if byte == b'\r' {
            was_cr = true;
            continue;
        }
        if LIMIT - q.on_line >= 3 && !needs_encoding(byte) {
            let max_run = LIMIT - q.on_line - 2;
            let start = i - 1;
            let mut end = i;
            while end < input.len() && end - start < max_run && !needs_encoding(input[end]) {
                end += 1;
            }
            q.out.extend_from_slice(&input[start..end]);
            q.on_line += end - start;
            q.backup = q.out.len();
            i = end;
            continue;
        }
        match byte {
            b'=' => q.append(b"=3D"),
            b'\t' | b' '..=b'~' => q.append(&[byte]),
            _ => q.append(&hex(byte)),
        }
    }
    if was_cr {
        q.append(b"=0D");
    } else {
        q.trailing_space();
    }
    q.out
}

fn hex(byte: u8) -> [u8; 3] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    [
        b'=',
        HEX[usize::from(byte >> 4)],
        HEX[usize::from(byte & 0x0F)],
    ]
}

/// The encoder's line: bytes on it, and where the last thing appended starts (a soft break
/// that no longer fits after it goes there).
struct Qp {
    out: Vec<u8>,
    on_line: usize,
    backup: usize,
}

impl Qp {
    fn append(&mut self, s: &[u8]) {
        if self.on_line + s.len() > LIMIT {
            if self.on_line == LIMIT {
                self.on_line = self.out.len() - self.backup;
                self.out
                    .splice(self.backup..self.backup, b"=\r\n".iter().copied());
            } else {
                self.out.extend_from_slice(b"=\r\n");
                self.on_line = 0;
            }
        }
        self.out.extend_from_slice(s);
        self.on_line += s.len();
        self.backup = self.out.len() - s.len();
    }

    /// A space or tab must not end a line: it is written encoded instead.
    fn trailing_space(&mut self) {
        let encoded: &[u8] = match self.out.last() {
            Some(b' ') => b"=20",
            Some(b'\t') => b"=09",
            _ => return,
        };
        self.out.pop();
        self.on_line -= 1;
        self.append(encoded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn same_as_lettre(text: &str) {
        let ours = text_body(text);
        let theirs = Body::new(text.to_owned());
        assert_eq!(ours.encoding(), theirs.encoding(), "encoding of {text:?}");
        assert_eq!(
            String::from_utf8_lossy(ours.as_ref()),
            String::from_utf8_lossy(theirs.as_ref()),
            "body of {text:?}"
        );
    }

    #[test]
    fn plain_short_ascii_is_7bit_with_crlf() {
        same_as_lettre("Hello Lee,\n\nStill thinking about it?\n");
        assert_eq!(text_body("a\nb\r\nc").as_ref(), b"a\r\nb\r\nc");
    }

    #[test]
    fn long_lines_accents_and_equals_are_quoted_printable() {
        same_as_lettre(&"Hello, world! ".repeat(40));
        same_as_lettre("Bonjour Zoé, à bientôt\n");
        same_as_lettre(
            "<a href=\"https://x.example/?a=1&b=2\">lien</a>\n"
                .repeat(5)
                .as_str(),
        );
        same_as_lettre(&format!(
            "{}=\n{}\t\n{} \r\n",
            "x".repeat(75),
            "y".repeat(74),
            "z".repeat(76)
        ));
        same_as_lettre("ends with a space \nand a tab\t");
        same_as_lettre("lone\rcarriage return and trailing\r");
        same_as_lettre(&"é".repeat(60));
    }

    #[test]
    fn mostly_non_ascii_is_left_to_lettre_as_base64() {
        same_as_lettre("田中様、お元気ですか。ご検討のほどよろしくお願いいたします。");
        assert_eq!(Encoding::choose("田中様", false), Encoding::Base64);
    }

    #[test]
    fn empty_and_line_ends_only() {
        for text in ["", "\n", "\r\n", "\n\n\r", " ", "\t\n", "="] {
            same_as_lettre(text);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Text of the characters that steer the encoder (line ends, spaces, `=`, accents,
        /// controls), at lengths around the 76-byte line.
        #[test]
        fn any_text_encodes_as_lettre_does(text in "([a-z =\t\r\n.é€\u{1}]{0,12}[a-z]{0,80}){0,8}") {
            same_as_lettre(&text);
        }

        #[test]
        fn any_string_encodes_as_lettre_does(text in any::<String>()) {
            same_as_lettre(&text);
        }
    }
}
