//! The inbound corpus (`tests/fixtures/inbound/`): realistic replies, auto-replies, bounces,
//! a complaint and a newsletter, each with its expected classification and lead in
//! `expected.tsv`, run through the library's parse + classify; plus the fields matching
//! needs, and inputs that must not panic.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rewarm::inbound::classify::{Classification, classify};
use rewarm::inbound::parse::{ParsedInbound, Report, parse, stated_return_date};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inbound")
}

fn read(file: &str) -> Vec<u8> {
    let path = corpus_dir().join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parsed(file: &str) -> ParsedInbound {
    parse(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// `(file, classification, lead or "-")` rows of expected.tsv.
fn expected_rows() -> Vec<(String, String, String)> {
    let tsv = std::fs::read_to_string(corpus_dir().join("expected.tsv")).unwrap();
    tsv.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(
                fields.len(),
                3,
                "expected.tsv line {line:?} needs 3 tab-separated fields"
            );
            (
                fields[0].to_string(),
                fields[1].to_string(),
                fields[2].to_string(),
            )
        })
        .collect()
}

/// The person a message concerns: the replier, or for bounces the failed recipient and for
/// complaints the complaining recipient; none for `other`.
fn lead_of(p: &ParsedInbound, classification: Classification) -> Option<String> {
    match (classification, &p.report) {
        (
            Classification::HardBounce | Classification::SoftBounce,
            Some(Report::Delivery(recipients, original)),
        ) => recipients
            .iter()
            .filter(|r| r.failure().is_some())
            .find_map(|r| {
                r.final_recipient
                    .clone()
                    .or_else(|| r.original_recipient.clone())
            })
            .or_else(|| original.to.first().cloned()),
        (Classification::Complaint, Some(Report::Feedback(original))) => {
            original.to.first().cloned()
        }
        (Classification::Other, _) => None,
        _ => p.from.clone(),
    }
}

fn delivery(
    file: &str,
) -> (
    Vec<rewarm::inbound::parse::DsnRecipient>,
    rewarm::inbound::parse::OriginalHeaders,
) {
    match parsed(file).report {
        Some(Report::Delivery(recipients, original)) => (recipients, original),
        other => panic!("{file}: expected a delivery report, got {other:?}"),
    }
}

#[test]
fn every_corpus_message_gets_its_expected_classification_and_lead() {
    let rows = expected_rows();
    assert!(rows.len() >= 20, "the corpus has {} messages", rows.len());
    let mut wrong = Vec::new();
    for (file, classification, lead) in &rows {
        let expected = Classification::parse(classification)
            .unwrap_or_else(|| panic!("{file}: unknown classification {classification:?}"));
        let p = parsed(file);
        let got = classify(&p);
        let got_lead = lead_of(&p, got).unwrap_or_else(|| "-".to_string());
        if got != expected || &got_lead != lead {
            wrong.push(format!(
                "{file}: expected {classification} / {lead}, got {got} / {got_lead}"
            ));
        }
    }
    assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
}

#[test]
fn every_corpus_file_is_listed_once_and_uses_crlf_line_ends() {
    let listed: Vec<String> = expected_rows()
        .into_iter()
        .map(|(file, _, _)| file)
        .collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".eml"))
        .collect();
    on_disk.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), listed.len(), "a file is listed twice");
    assert_eq!(sorted, on_disk);
    for file in &on_disk {
        let raw = read(file);
        let bare_lf = raw
            .windows(2)
            .filter(|w| w[1] == b'\n' && w[0] != b'\r')
            .count()
            + usize::from(raw.first() == Some(&b'\n'));
        assert_eq!(bare_lf, 0, "{file} has bare LF line ends");
    }
}

#[test]
fn every_classification_appears_in_the_corpus() {
    let covered: Vec<String> = expected_rows().into_iter().map(|(_, c, _)| c).collect();
    for c in Classification::ALL {
        assert!(
            covered.iter().any(|x| x == c.as_str()),
            "no corpus message is {c}"
        );
    }
}

#[test]
fn human_replies_carry_the_reply_token_and_our_message_id() {
    let cases = [
        (
            "gmail_human_reply.eml",
            "reply+k1.AwAAAAAAAAAqAAAAAA.q7Zt0mXcVb2yR8dLkP4nWw@reply.acme.example",
            "k1.AQAAAAAAAAAqAAAAAA.a9F3kLm2@acme.example",
        ),
        (
            "outlook_human_reply.eml",
            "reply+k1.AwAAAAAAAAArAAAAAA.Hc2Lw8Qy1Tn4Vx6Zb0Mp3k@reply.acme.example",
            "k1.AQAAAAAAAAArAAAAAA.Tq8Vn3Rx@acme.example",
        ),
        (
            "apple_mail_human_reply.eml",
            "reply+k1.AwAAAAAAAAAsAAAAAA.Yp5Mk2Nq8Rs1Tv4Wx7Za0b@reply.acme.example",
            "k1.AQAAAAAAAAAsAAAAAA.Pw4Dz7Lc@acme.example",
        ),
        (
            "unsubscribe_request_german.eml",
            "reply+k1.AwAAAAAAAAA8AAAAAA.Vb1Nm4Qw7Er0Ty3Ui6Op9a@reply.acme.example",
            "k1.AQAAAAAAAAA8AAAAAA.Kl7Zx0Cv@acme.example",
        ),
    ];
    for (file, reply_address, our_id) in cases {
        let p = parsed(file);
        assert!(
            p.recipients.iter().any(|r| r == reply_address),
            "{file}: {:?}",
            p.recipients
        );
        assert_eq!(p.in_reply_to, [our_id], "{file}");
        assert!(
            p.references.iter().any(|r| r == our_id),
            "{file}: {:?}",
            p.references
        );
        assert!(
            p.message_id.as_deref().is_some_and(|id| !id.contains('<')),
            "{file}"
        );
    }
}

#[test]
fn human_reply_text_is_the_new_text_without_quoted_history_or_footer() {
    let cases = [
        (
            "gmail_human_reply.eml",
            "Could you\nsend me a few slots for a demo next week?",
        ),
        (
            "outlook_human_reply.eml",
            "Please send pricing for 15 seats",
        ),
        (
            "apple_mail_human_reply.eml",
            "Let\u{2019}s talk Thursday at 3pm CET",
        ),
        (
            "unsubscribe_request_english.eml",
            "Please take me off your list.",
        ),
        ("unsubscribe_request_german.eml", "keine E-Mails mehr"),
    ];
    for (file, new_text) in cases {
        let text = parsed(file).text;
        assert!(text.contains(new_text), "{file}: {text:?}");
        for history in [
            "Last year you looked",
            "letztes Jahr",
            "acme.example/u/",
            "Unsubscribe",
            "Abmelden",
            "wrote:",
            "From: Acme",
            "Von: Acme",
            "Urspr",
        ] {
            assert!(
                !text.contains(history),
                "{file}: {history:?} left in {text:?}"
            );
        }
        assert!(
            !text.lines().any(|l| l.trim_start().starts_with('>')),
            "{file}: {text:?}"
        );
    }
}

#[test]
fn bounces_name_the_failed_recipient_its_status_and_our_original_message() {
    let cases = [
        (
            "postfix_dsn_hard.eml",
            "gina@example.com",
            "5.1.1",
            "failed",
            Some("k1.AQAAAAAAAAAzAAAAAA.Xc7Vb0Nm@acme.example"),
        ),
        (
            "postfix_dsn_soft_mailbox_full.eml",
            "hank@example.org",
            "4.2.2",
            "delayed",
            Some("k1.AQAAAAAAAAA0AAAAAA.Bn3Mq6Wl@acme.example"),
        ),
        (
            "postfix_nonstandard_bounce.eml",
            "max@example.com",
            "5.1.1",
            "failed",
            Some("k1.AQAAAAAAAAA5AAAAAA.Er3Ty6Ui@acme.example"),
        ),
        (
            "exim_bounce_hard.eml",
            "ivy@example.net",
            "5.1.1",
            "failed",
            Some("k1.AQAAAAAAAAA1AAAAAA.Lp2Ko5Ji@acme.example"),
        ),
        (
            "exim_delay_soft.eml",
            "kim@example.org",
            "4.2.2",
            "delayed",
            Some("k1.AQAAAAAAAAA2AAAAAA.Mh6Ng9Bt@acme.example"),
        ),
        (
            "gmail_dsn_hard.eml",
            "jo@example.com",
            "5.1.1",
            "failed",
            Some("k1.AQAAAAAAAAA3AAAAAA.Wz4Xs7Ed@acme.example"),
        ),
        (
            "exchange_ndr_hard.eml",
            "lena.vogel@example.org",
            "5.1.10",
            "failed",
            Some("k1.AQAAAAAAAAA4AAAAAA.Ty6Ui9Op@acme.example"),
        ),
    ];
    for (file, recipient, status, action, original_id) in cases {
        let (recipients, original) = delivery(file);
        assert_eq!(recipients.len(), 1, "{file}: {recipients:?}");
        let r = &recipients[0];
        assert_eq!(r.final_recipient.as_deref(), Some(recipient), "{file}");
        assert_eq!(r.status.as_deref(), Some(status), "{file}");
        assert_eq!(r.action.as_deref(), Some(action), "{file}");
        assert!(
            r.diagnostic.as_deref().is_some_and(|d| d.contains(status)),
            "{file}: {r:?}"
        );
        assert_eq!(original.message_id.as_deref(), original_id, "{file}");
        assert_eq!(original.to, [recipient], "{file}");
        let p = parsed(file);
        assert!(
            p.recipients.iter().any(|r| r.starts_with("bounce+k1.")),
            "{file}: {:?}",
            p.recipients
        );
    }
}

#[test]
fn the_complaint_names_our_original_message_and_the_complainer() {
    let p = parsed("arf_complaint.eml");
    let Some(Report::Feedback(original)) = &p.report else {
        panic!("not a feedback report: {:?}", p.report)
    };
    assert_eq!(
        original.message_id.as_deref(),
        Some("k1.AQAAAAAAAAA6AAAAAA.Op9As2Df@acme.example")
    );
    assert_eq!(original.to, ["jane@example.com"]);
}

/// The return date `p` states, as processing reads it (the day received stands in for a
/// missing Date header; every file here has one).
fn return_date_of(p: &ParsedInbound) -> Option<NaiveDate> {
    let received_on = NaiveDate::from_ymd_opt(2026, 3, 10).expect("a date");
    stated_return_date(p, classify(p), received_on)
}

#[test]
fn out_of_office_replies_state_their_return_date() {
    let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    let cases = [
        ("exchange_out_of_office.eml", date("2026-03-16")),
        ("gmail_vacation_responder.eml", date("2026-03-20")),
        ("out_of_office_german_headerless.eml", date("2026-03-16")),
        ("out_of_office_french_headerless.eml", date("2026-03-16")),
        ("out_of_office_dutch_body_only.eml", date("2026-03-16")),
        ("helpdesk_auto_acknowledgement.eml", None),
    ];
    for (file, expected) in cases {
        let p = parsed(file);
        assert_eq!(classify(&p), Classification::AutoReply, "{file}");
        assert_eq!(return_date_of(&p), expected, "{file}");
    }
    for file in [
        "gmail_human_reply.eml",
        "newsletter_unrelated.eml",
        "postfix_dsn_hard.eml",
    ] {
        assert_eq!(
            return_date_of(&parsed(file)),
            None,
            "{file}: only auto-replies have a return date"
        );
    }
}

#[test]
fn corpus_messages_classify_the_same_with_bare_lf_line_ends() {
    for (file, classification, _) in expected_rows() {
        let lf: Vec<u8> = String::from_utf8_lossy(&read(&file))
            .replace("\r\n", "\n")
            .into_bytes();
        let p = parse(&lf).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            classify(&p).as_str(),
            classification,
            "{file} with LF line ends"
        );
    }
}

#[test]
fn garbage_truncated_mangled_and_huge_inputs_never_panic() {
    let mut inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\r\n\r\n".to_vec(),
        b"not an email at all".to_vec(),
        vec![0xff; 4096],
        (0..=255u8).cycle().take(100_000).collect(),
    ];
    for (file, _, _) in expected_rows() {
        let raw = read(&file);
        // Truncated anywhere, including inside headers, boundaries and encoded words.
        for cut in (0..raw.len()).step_by(37) {
            inputs.push(raw[..cut].to_vec());
        }
        // Bytes flipped at regular intervals.
        let mut flipped = raw.clone();
        for i in (0..flipped.len()).step_by(13) {
            flipped[i] ^= 0x5a;
        }
        inputs.push(flipped);
        // Boundaries and structure lost, then repeated.
        inputs.push(String::from_utf8_lossy(&raw).replace("--", "").into_bytes());
        inputs.push(raw.repeat(20));
    }
    // A huge message: 8 MB of quoted, dated, address-laden text.
    let mut huge =
        b"From: ann@example.com\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\n"
            .to_vec();
    let line = b"> On Tue wrote: back on 12.03.2027, ann@example.com 550 5.1.1 unsubscribe\r\n";
    while huge.len() < 8 * 1024 * 1024 {
        huge.extend_from_slice(line);
    }
    inputs.push(huge);
    // Deeply nested message/rfc822 parts.
    inputs.push(
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n"
            .repeat(500)
            .into_bytes(),
    );

    for input in &inputs {
        if let Ok(p) = parse(input) {
            let _ = classify(&p);
        }
    }
}
