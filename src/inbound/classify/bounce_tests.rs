//! Bounces of many shapes, and the messages that look like one without being clearly one
//! (review), through parse + classify. The full corpus is in `tests/fixtures/bounces/`.

use super::*;
use crate::inbound::parse::{crlf, parse};

/// A message with these header lines (`\n`-separated) and body, parsed.
fn parsed(headers: &str, body: &str) -> ParsedInbound {
    parse(&crlf(&format!("{headers}\n\n{body}\n"))).expect("a message")
}

/// The failed recipients a parsed message's report names.
fn failed(p: &ParsedInbound) -> Vec<String> {
    match &p.report {
        Some(Report::Delivery(recipients, _)) => recipients
            .iter()
            .filter(|r| r.failure().is_some())
            .filter_map(|r| r.final_recipient.clone())
            .collect(),
        _ => Vec::new(),
    }
}

const COPY: &str = "\n--- Below this line is a copy of the message.\n\nReturn-Path: <bounce+k1.x@bounce.acme.example>\nFrom: Paul <sales@acme.example>\nTo: bob@example.org\nMessage-ID: <k1.AQ.x@acme.example>\nSubject: Hello\n\nHello Bob\n";

#[test]
fn bounces_of_each_family_get_their_class_and_recipients() {
    use Classification::{HardBounce, SoftBounce};
    let cases: &[(&str, &str, &str, Classification, &[&str])] = &[
        (
            "qmail",
            "From: MAILER-DAEMON@mx.example.net\nSubject: failure notice",
            "Hi. This is the qmail-send program at mx.example.net.\nI'm afraid I wasn't able to deliver your message to the following addresses.\nThis is a permanent error; I've given up. Sorry it didn't work out.\n\n<bob@example.org>:\nSorry, no mailbox here by that name. (#5.1.1)\n",
            HardBounce,
            &["bob@example.org"],
        ),
        (
            "qmail, temporary cause",
            "From: MAILER-DAEMON@mx.example.net\nSubject: failure notice",
            "Hi. This is the qmail-send program at mx.example.net.\nI'm not going to try again; this message has been in the queue too long.\n\n<bob@example.org>:\nConnected to 192.0.2.50 but connection died. (#4.4.2)\n",
            SoftBounce,
            &["bob@example.org"],
        ),
        (
            "vendor daemon with a Failed Recipients list",
            "From: E500_SMTP_Mail_Service@example.org\nTo: sales@acme.example\nSubject: Returned Mail - Error During Delivery",
            "------ Failed Recipients ------\n<bob@example.org>: Requested action not taken: mailbox unavailable. [SMTP Error Code 550]\n<cy@example.org>: Requested action not taken: mailbox unavailable. [SMTP Error Code 550]\n\n-------- Returned Mail --------\nReceived: from send.acme.example\nFrom: Paul <sales@acme.example>\nTo: bob@example.org\n",
            HardBounce,
            &["bob@example.org", "cy@example.org"],
        ),
        (
            "Exchange legacy",
            "From: System Administrator <postmaster@example.org>\nSubject: Undeliverable: Hello",
            "Your message\n\n  To:      Bob\n  Subject: Hello\n\ndid not reach the following recipient(s):\n\nbob@example.org on Tue, 3 Mar 2026 10:02:16 +0000\n    The e-mail account does not exist at the organization this message was sent to.\n    <mx.example.org #5.1.1>\n",
            HardBounce,
            &["bob@example.org"],
        ),
        (
            "Exchange legacy, mailbox full",
            "From: System Administrator <postmaster@example.org>\nSubject: Undeliverable: Hello",
            "did not reach the following recipient(s):\n\nbob@example.org on Tue, 3 Mar 2026\n    The recipient's mailbox is full and can't accept messages now.\n    <mx.example.org #4.2.2>\n",
            SoftBounce,
            &["bob@example.org"],
        ),
        (
            "SMTP32",
            "From: Postmaster@mail.example.org\nSubject: Undeliverable Mail\nX-Mailer: <SMTP32 v8.22>",
            "Unknown user: bob@example.org\n\nRCPT TO:<bob@example.org>\n\nOriginal message follows.\n\nReceived: from x\nFrom: sales@acme.example\n",
            HardBounce,
            &["bob@example.org"],
        ),
        (
            "SMTP32, quota",
            "From: Postmaster@mail.example.org\nSubject: Undeliverable Mail",
            "User mailbox exceeds allowed size: bob@example.org\n",
            SoftBounce,
            &["bob@example.org"],
        ),
        (
            "Lotus Notes",
            "From: Postmaster@example.com\nSubject: DELIVERY FAILURE: User bob (bob@example.com) not listed in Domino Directory",
            "Your message\n\n  Subject: Hello\n\nwas not delivered to:\n\n  bob@example.com\n\nbecause:\n\n  User bob (bob@example.com) not listed in Domino Directory\n",
            HardBounce,
            &["bob@example.com"],
        ),
        (
            "Yahoo",
            "From: MAILER-DAEMON@yahoo.com\nSubject: Failure Notice",
            &format!(
                "Sorry, we were unable to deliver your message to the following address.\n\n<bob@example.org>:\nRemote host said: 554 delivery error: dd This user doesn't have an account [0]\n{COPY}"
            ),
            HardBounce,
            &["bob@example.org"],
        ),
        (
            "Sendmail warning",
            "From: Mail Delivery Subsystem <MAILER-DAEMON@relay.example.net>\nSubject: Warning: could not send message for past 4 hours",
            "    **      THIS IS A WARNING MESSAGE ONLY      **\n\n   ----- Transcript of session follows -----\n<bob@example.org>... Deferred: Connection timed out with mx.example.org.\n",
            SoftBounce,
            &["bob@example.org"],
        ),
        (
            "a notice with no status nor wording is a permanent failure",
            "From: postmaster@mail.example.com\nSubject: Delivery Status Notification (Failure)",
            "This is an automatically generated Delivery Status Notification.\n\nDelivery to the following recipients failed.\n\n       bob@example.com\n",
            HardBounce,
            &["bob@example.com"],
        ),
        (
            "German, by subject and sender",
            "From: postmaster@example.de\nSubject: Unzustellbar: Hallo",
            "Die Zustellung an folgende Empfänger oder Gruppen ist fehlgeschlagen:\n\nbob@example.de\nRemote Server returned '550 5.1.1 RESOLVER.ADR.RecipientNotFound'\n",
            HardBounce,
            &["bob@example.de"],
        ),
        (
            "Italian, from a display name only",
            "From: Mail Delivery System <notices@mx.example.it>\nSubject: Non recapitabile: Ciao",
            "Recapito non riuscito per i seguenti destinatari o gruppi:\n\nbob@example.it\n550 5.1.1 not found\n",
            HardBounce,
            &["bob@example.it"],
        ),
        (
            "German delay, from a daemon with a status code",
            "From: Mailer-Daemon@t-online.example\nSubject: Benachrichtigung zum Zustellstatus (Verzögerung)",
            "Die Nachricht an bob@example.de konnte noch nicht zugestellt werden. Es wird weiterhin versucht.\nGrund: 421 4.4.2 Verbindung abgebrochen\n",
            SoftBounce,
            &["bob@example.de"],
        ),
        (
            "a transcript's MAIL FROM is not a failed recipient",
            "From: Mail Delivery Subsystem <MAILER-DAEMON@relay.example.net>\nSubject: Returned mail: see transcript for details",
            "   ----- Transcript of session follows -----\n>>> MAIL From:<paul@acme.example>\n<<< 250 ok\n>>> RCPT To:<bob@example.org>\n<<< 550 5.1.1 User unknown\n",
            HardBounce,
            &["bob@example.org"],
        ),
        (
            "GroupWise names a local part only: the returned copy's To",
            "From: Postmaster@example.org\nSubject: Message status - undeliverable\nContent-Type: multipart/mixed; boundary=b",
            "--b\nContent-Type: text/plain\n\nThe message that you sent was undeliverable to the following:\n\tbob (user not found)\n--b\nContent-Type: message/rfc822\n\nFrom: sales@acme.example\nTo: Bob <bob@example.org>\nMessage-ID: <k1.AQ.y@acme.example>\nSubject: Hi\n\nHello\n--b--",
            HardBounce,
            &["bob@example.org"],
        ),
    ];
    for (name, headers, body, class, recipients) in cases {
        let p = parsed(headers, body);
        assert_eq!(classify(&p), *class, "{name}: {:?}", p.report);
        assert_eq!(failed(&p), *recipients, "{name}");
    }
}

#[test]
fn a_success_notice_from_a_mail_system_is_no_bounce() {
    let p = parsed(
        "From: postmaster@mail.example.com\nSubject: Delivery Status Notification (Relay)",
        "This is an automatically generated Delivery Status Notification.\n\nYour message has been successfully relayed to the following recipients, but the requested delivery status notifications may not be generated by the destination.\n\n       bob@example.com\n",
    );
    assert_eq!(classify(&p), Classification::Other);
}

#[test]
fn mail_system_senders_are_never_human() {
    for from in [
        "MAILER-DAEMON@mx.example.net",
        "Mail Delivery Subsystem <notify@mx.example.net>",
        "postmaster@example.org",
        "E500_SMTP_Mail_Service@example.org",
    ] {
        let p = parsed(
            &format!("From: {from}\nSubject: Re: Hello"),
            "Thanks for your message, sounds good, let's talk.",
        );
        assert_ne!(classify(&p), Classification::HumanReply, "{from}");
    }
}

#[test]
fn unsure_between_bounce_and_reply_goes_to_review() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "a person forwards a bounce",
            "From: Ann <ann@example.com>\nSubject: Fwd: Undeliverable: Hello",
            "FYI, Bob left. Try Carol.\n\n---------- Forwarded message ---------\nFrom: postmaster@example.com\nSubject: Undeliverable: Hello\n\nDelivery has failed to these recipients or groups: bob@example.com",
        ),
        (
            "a bounce subject from a personal address",
            "From: it-helpdesk@example.org\nSubject: Returned mail: see transcript",
            "Your message was not accepted.",
        ),
        (
            "a returned copy of a sent message, inline",
            "From: ann@example.com\nSubject: your mail",
            "This came back to me:\n\nReturn-Path: <bounce+k1.x@bounce.acme.example>\nReceived: from send.acme.example\nFrom: Paul <sales@acme.example>\nTo: bob@example.com\n\nHello",
        ),
        (
            "bounce wording with a status code",
            "From: ann@example.com\nSubject: hello",
            "Your message could not be delivered: 550 5.1.1 user unknown",
        ),
    ];
    for (name, headers, body) in cases {
        let p = parsed(headers, body);
        let v = verdict(&p);
        assert!(v.for_review(), "{name}: {v:?}");
        assert_eq!(v.classification, Classification::Other, "{name}");
    }
    let attached = parsed(
        "From: ann@example.com\nSubject: see attached\nContent-Type: multipart/mixed; boundary=b",
        "--b\nContent-Type: text/plain\n\nWhat is this?\n--b\nContent-Type: message/rfc822\n\nFrom: sales@acme.example\nMessage-ID: <k1.AQ.x@acme.example>\nSubject: Hi\n\nHello\n--b--",
    );
    assert!(verdict(&attached).for_review());
}

#[test]
fn replies_that_only_mention_delivery_stay_human() {
    for (subject, body) in [
        (
            "Re: your offer",
            "Your message could not be delivered to one or more of my colleagues, it seems.",
        ),
        ("Re: Hello", "Delivery of the chairs failed twice. Call me?"),
        (
            "Re: Hello",
            "Yes! Quote attached.\n\nOn Tue, Paul wrote:\n> Return-Path: nothing\n> Hello",
        ),
    ] {
        let p = parsed(&format!("From: ann@example.com\nSubject: {subject}"), body);
        assert_eq!(
            verdict(&p).classification,
            Classification::HumanReply,
            "{body}"
        );
    }
}
