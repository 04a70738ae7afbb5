//! Property tests of the inbound parser: no bytes — random, or shaped like a message with
//! odd headers, MIME parts, bounce reports and encodings — make parsing, classifying or
//! reading a return date panic. Few cases per property (CI stays fast).

use chrono::NaiveDate;
use proptest::prelude::*;

use super::parse;

fn header_line() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("From"),
        Just("To"),
        Just("Subject"),
        Just("In-Reply-To"),
        Just("References"),
        Just("Auto-Submitted"),
        Just("Content-Type"),
        Just("Content-Transfer-Encoding"),
        Just("X-Failed-Recipients"),
        Just("Return-Path"),
        Just("List-Id"),
        Just("Precedence"),
    ];
    (name, ".{0,40}").prop_map(|(n, v)| format!("{n}: {v}"))
}

fn message() -> impl Strategy<Value = Vec<u8>> {
    let body = prop_oneof![
        ".{0,200}",
        Just("--b\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.1.1\r\nAction: failed\r\n--b--".to_string()),
        Just("=?utf-8?B?SGVsbG8=?= =E2=80=94 back on 2026-12-24".to_string()),
        Just("> quoted\n> lines\nOn Mon, someone wrote:\n".to_string()),
    ];
    (
        proptest::collection::vec(header_line(), 0..8),
        body,
        any::<bool>(),
    )
        .prop_map(|(headers, body, crlf)| {
            let nl = if crlf { "\r\n" } else { "\n" };
            format!("{}{nl}{nl}{body}", headers.join(nl)).into_bytes()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_bytes_make_the_parser_panic(raw in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(parsed) = parse(&raw) {
            let _ = crate::inbound::classify::classify(&parsed);
        }
    }

    #[test]
    fn message_shaped_input_parses_and_classifies_without_panicking(raw in message()) {
        if let Ok(parsed) = parse(&raw) {
            let _ = crate::inbound::classify::verdict(&parsed);
        }
    }

    #[test]
    fn no_text_makes_the_return_date_reader_panic(text in ".{0,120}", days in 0i64..20_000) {
        let reference = NaiveDate::from_ymd_opt(1990, 1, 1).unwrap_or_default() + chrono::Days::new(days as u64);
        let _ = super::return_date::return_date(&text, reference);
    }
}
