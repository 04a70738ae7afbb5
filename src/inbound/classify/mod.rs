//! What an inbound message is: a person's reply, an automatic one, a bounce, a complaint, a
//! request to be removed, or something else — a [`Classification`] (the type lives in
//! `domain::reply`, so what only reads it needs no parser). Pure rules over a
//! [`ParsedInbound`], applied in this order (the first that fires decides; [`verdict`] names
//! it; the phrases they look for are in `phrases`):
//!
//! 1. A feedback report (ARF) is a `complaint`.
//! 2. A delivery report — standard, or synthesized by [`super::parse`] from a non-standard
//!    notice (qmail, Exim, Postfix, Sendmail, Exchange, GroupWise, Notes, SMTP32 …) — is a `hard_bounce` if any recipient failed permanently
//!    (5.x.x, or `Action: failed` without a status), else a `soft_bounce` if any failed
//!    transiently (4.x.x or `Action: delayed`); a report of successful delivery falls back on
//!    the wording, then is `other`.
//! 3. Anything else from a mail system (MAILER-DAEMON, postmaster, a vendor's daemon, a
//!    "Mail Delivery Subsystem" display name, an empty Return-Path): `soft_bounce` only when
//!    its text clearly says temporary, else `hard_bounce` if it clearly says permanent, else
//!    `other`. A mail system's message is never a `human_reply`.
//! 4. Explicit auto-replies: `Auto-Submitted: auto-replied` (RFC 3834), `X-Autoreply`,
//!    `X-Autorespond`, `X-Autoresponder`, `Precedence: auto_reply`, Exchange's inbox-rule and
//!    out-of-office markers, an out-of-office subject (English, German, French, Spanish,
//!    Dutch), and read receipts (`disposition-notification` reports).
//! 5. Mailing lists and newsletters (`List-Id`, `List-Unsubscribe`, `List-Post`): `other`.
//!    They are not a response to our message, and their footers would otherwise look like
//!    unsubscribe requests; a list's own out-of-office is caught by step 4 first.
//! 6. Other automatic mail: any other `Auto-Submitted` value but `no`,
//!    `Precedence: bulk|junk|list`, a no-reply sender, an out-of-office body (scored, so one
//!    phrase in a person's reply is not enough), a helpdesk acknowledgement ("We have received
//!    your request" with a ticket number, "this is an automated response").
//! 7. Review: a message that looks like a bounce but was not read as one — it carries a
//!    returned copy of a sent message, has a bounce subject ("Undeliverable", "Fwd: Returned
//!    mail" …), or bounce wording with a status code — is `other`, for review
//!    ([`Verdict::for_review`]): processing keeps it unmatched, so it changes no lead and
//!    reaches no sales rep, and `inbound list --unmatched` shows it.
//! 8. A request to be removed ("unsubscribe", "remove me", "abmelden", "désinscrire",
//!    "darme de baja", "afmelden" …) in the *new* text, or in a subject of the sender's own
//!    (not "Re: …", which is ours), not negated ("I don't want to unsubscribe") and not on a
//!    line with a link (a footer): `unsubscribe`.
//! 9. Otherwise a message with a sender is a `human_reply`; without one, `other`.
//!
//! Threading (an In-Reply-To one of our Message-IDs) never enters into it: an auto-reply is
//! threaded too.

mod phrases;

use super::parse::fold::{contains_phrase, fold, phrase_positions};
use super::parse::{DsnRecipient, Failure, ParsedInbound, Report, is_mail_system, text_failure};
use phrases::{
    AFTER_PLEASE_STOP, HELPDESK_AUTOMATED, HELPDESK_RECEIVED, HELPDESK_TICKET, NEGATIONS,
    OOF_STRONG, OOF_SUBJECT_ANYWHERE, OOF_SUBJECT_START, OOF_WEAK, REMOVE_ME,
};

pub use crate::domain::reply::Classification;

/// A classification and the rule that decided it (evidence for the record and for review).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub classification: Classification,
    pub reason: &'static str,
}

/// The reason of a message that looks like a bounce but is not clearly one (see rule 7).
pub const REVIEW_REASON: &str = "looks like a bounce, not clearly one: kept for review";

impl Verdict {
    /// Whether the message is kept for review rather than acted on: unsure between a bounce
    /// and a person's reply, it must reach neither a lead's state nor sales.
    pub fn for_review(&self) -> bool {
        self.reason == REVIEW_REASON
    }
}

/// How many characters of the new text the wording rules read.
const TEXT_LIMIT: usize = 16 * 1024;

/// What `p` is (see the module documentation for the rules).
pub fn classify(p: &ParsedInbound) -> Classification {
    verdict(p).classification
}

/// What `p` is, and why.
pub fn verdict(p: &ParsedInbound) -> Verdict {
    use Classification::*;
    let decided = |classification, reason| Verdict {
        classification,
        reason,
    };
    // What decides is said near the top; a bounded head keeps huge messages cheap.
    let head: String = p.text.chars().take(TEXT_LIMIT).collect();
    let text = fold(&head);

    match &p.report {
        Some(Report::Feedback(_)) => return decided(Complaint, "feedback report (ARF)"),
        Some(Report::Delivery(recipients, _)) => {
            let failures: Vec<Failure> = recipients
                .iter()
                .filter_map(DsnRecipient::failure)
                .collect();
            if failures.contains(&Failure::Permanent) {
                return decided(
                    HardBounce,
                    "delivery report: a recipient failed permanently",
                );
            }
            if failures.contains(&Failure::Transient) {
                return decided(SoftBounce, "delivery report: delayed or failed transiently");
            }
            return match text_failure(&text) {
                Some(Failure::Transient) => {
                    decided(SoftBounce, "delivery report: text says temporary")
                }
                Some(Failure::Permanent) => {
                    decided(HardBounce, "delivery report: text says permanent")
                }
                None => decided(Other, "delivery report without a failure"),
            };
        }
        None => {}
    }

    if p.shape.from_system || p.from.as_deref().is_some_and(is_mail_system) {
        return match text_failure(&text) {
            Some(Failure::Transient) => decided(SoftBounce, "mail system notice: temporary"),
            Some(Failure::Permanent) => decided(HardBounce, "mail system notice: permanent"),
            None => decided(Other, "mail system notice without a failure"),
        };
    }

    if let Some(reason) = explicit_auto_reply(p) {
        return decided(AutoReply, reason);
    }
    if ["list-id", "list-unsubscribe", "list-post"]
        .iter()
        .any(|h| p.has_header(h))
    {
        return decided(Other, "mailing list or newsletter");
    }
    if let Some(reason) = implicit_automatic(p) {
        return decided(AutoReply, reason);
    }

    if out_of_office_score(&text) >= OUT_OF_OFFICE_THRESHOLD {
        return decided(AutoReply, "out-of-office wording");
    }
    let subject = fold(&p.subject);
    if is_helpdesk_acknowledgement(&text, &subject) {
        return decided(AutoReply, "helpdesk acknowledgement");
    }
    if p.shape.says_bounce() {
        return decided(Other, REVIEW_REASON);
    }
    if asks_to_be_removed(&text) || (!is_reply_subject(&subject) && asks_to_be_removed(&subject)) {
        return decided(Unsubscribe, "asks to be removed");
    }
    if p.from.is_none() {
        return decided(Other, "no sender");
    }
    decided(HumanReply, "from a person")
}

// ---------------------------------------------------------------------------------------------
// Auto-replies

/// The first value of a header, lower-cased, up to any `;` parameters.
fn header_word(p: &ParsedInbound, name: &str) -> Option<String> {
    p.header(name).map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

/// Markers only responses to a message carry.
fn explicit_auto_reply(p: &ParsedInbound) -> Option<&'static str> {
    if header_word(p, "auto-submitted").is_some_and(|v| v.starts_with("auto-replied")) {
        return Some("Auto-Submitted: auto-replied");
    }
    for (name, reason) in [
        ("x-autoreply", "X-Autoreply"),
        ("x-autorespond", "X-Autorespond"),
        ("x-autoresponder", "X-Autoresponder"),
        ("x-auto-reply", "X-Auto-Reply"),
    ] {
        if header_word(p, name).is_some_and(|v| !matches!(v.as_str(), "no" | "false" | "0")) {
            return Some(reason);
        }
    }
    if header_word(p, "precedence").is_some_and(|v| v == "auto_reply") {
        return Some("Precedence: auto_reply");
    }
    // Exchange sends out-of-office replies (and other inbox-rule replies) with these.
    if p.has_header("x-ms-exchange-inbox-rules-loop") {
        return Some("Exchange inbox rule (X-MS-Exchange-Inbox-Rules-Loop)");
    }
    if p.header("x-ms-exchange-generated-message-source")
        .is_some_and(|v| fold(v).contains("mailbox rules agent"))
    {
        return Some("Exchange mailbox rules agent");
    }
    if is_out_of_office_subject(&p.subject) {
        return Some("out-of-office subject");
    }
    let content_type = p.header("content-type").map(fold).unwrap_or_default();
    if content_type.contains("multipart/report")
        && content_type.contains("disposition-notification")
    {
        return Some("read receipt (disposition notification)");
    }
    None
}

/// Automatic mail that is not necessarily a response to ours.
fn implicit_automatic(p: &ParsedInbound) -> Option<&'static str> {
    if header_word(p, "auto-submitted").is_some_and(|v| !v.is_empty() && v != "no") {
        return Some("Auto-Submitted");
    }
    if header_word(p, "precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "junk" | "list"))
    {
        return Some("Precedence: bulk, junk or list");
    }
    let local = p
        .from
        .as_deref()
        .and_then(|f| f.split('@').next())
        .unwrap_or("")
        .replace(['-', '_', '.'], "");
    if matches!(local.as_str(), "noreply" | "donotreply" | "noresponse") {
        return Some("no-reply sender");
    }
    None
}

/// A subject an out-of-office reply would have. A subject that starts as a reply ("Re:")
/// is the original subject a person answered, so only unprefixed subjects count.
pub fn is_out_of_office_subject(subject: &str) -> bool {
    let s = fold(subject.trim());
    if is_reply_subject(&s) {
        return false;
    }
    OOF_SUBJECT_ANYWHERE
        .iter()
        .any(|phrase| contains_phrase(&s, phrase))
        || OOF_SUBJECT_START.iter().any(|word| {
            s.strip_prefix(word)
                .is_some_and(|rest| rest.chars().next().is_none_or(|c| !c.is_alphanumeric()))
        })
}

/// Whether a (folded) subject answers or forwards another ("Re:", "AW:", "Fwd:" …): then
/// the rest is the subject someone else wrote — ours.
fn is_reply_subject(folded: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "re:", "re :", "aw:", "sv:", "antw:", "r:", "rv:", "ref:", "wg:", "fw:", "fwd:", "tr:",
        "tr :",
    ];
    PREFIXES.iter().any(|p| folded.trim_start().starts_with(p))
}

/// The score at which a body is an out-of-office reply: a strong phrase plus anything more.
const OUT_OF_OFFICE_THRESHOLD: u32 = 3;

/// How strongly a (folded) text reads like an out-of-office reply; only its first 3000
/// characters count (an out-of-office says so at the top).
fn out_of_office_score(folded: &str) -> u32 {
    let head: String = folded.chars().take(3000).collect();
    let count = |phrases: &[&str]| -> u32 {
        phrases
            .iter()
            .filter(|p| contains_phrase(&head, p))
            .count()
            .try_into()
            .unwrap_or(u32::MAX)
    };
    count(OOF_STRONG)
        .saturating_mul(2)
        .saturating_add(count(OOF_WEAK))
}

/// A helpdesk's automatic "we got it" (folded text and subject).
fn is_helpdesk_acknowledgement(text: &str, subject: &str) -> bool {
    let head: String = text.chars().take(3000).collect();
    if HELPDESK_AUTOMATED.iter().any(|p| head.contains(p)) {
        return true;
    }
    let received = HELPDESK_RECEIVED
        .iter()
        .any(|p| head.contains(p) || subject.contains(p));
    let ticket = HELPDESK_TICKET
        .iter()
        .any(|p| head.contains(p) || subject.contains(p));
    received && ticket
}

// ---------------------------------------------------------------------------------------------
// Unsubscribe requests

/// Whether a (folded) text asks to stop receiving our mail. Lines with a link are skipped:
/// that is how footers offer unsubscribing, not how people ask for it.
fn asks_to_be_removed(folded: &str) -> bool {
    folded
        .lines()
        .filter(|line| !(line.contains("://") || line.contains("www.") || line.contains("mailto:")))
        .any(|line| {
            REMOVE_ME
                .iter()
                .any(|phrase| phrase_positions(line, phrase).any(|at| !negated(&line[..at])))
                || phrase_positions(line, "please stop").any(|at| {
                    let after = line[at + "please stop".len()..].trim_start();
                    let next = after
                        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\''))
                        .next();
                    !negated(&line[..at])
                        && next.is_none_or(|w| w.is_empty() || AFTER_PLEASE_STOP.contains(&w))
                })
        })
}

/// Whether the clause that ends at a phrase negates it in its last three words.
fn negated(before: &str) -> bool {
    let clause = before
        .rsplit([',', '.', ';', ':', '!', '?', '(', ')'])
        .next()
        .unwrap_or("");
    clause
        .split_whitespace()
        .rev()
        .take(3)
        .any(|w| NEGATIONS.contains(&w))
}

#[cfg(test)]
mod bounce_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::{OriginalHeaders, crlf, parse};

    /// A message from ann@example.com with these headers, subject and new text.
    fn message(headers: &[(&str, &str)], subject: &str, text: &str) -> ParsedInbound {
        ParsedInbound {
            from: Some("ann@example.com".into()),
            in_reply_to: vec!["k1.AQAAAAAAAAAqAAAAAA.abcdefgh@acme.example".into()],
            subject: subject.into(),
            text: text.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
                .collect(),
            ..ParsedInbound::default()
        }
    }

    fn dsn(entries: &[(Option<&str>, Option<&str>)]) -> Report {
        Report::Delivery(
            entries
                .iter()
                .map(|(action, status)| DsnRecipient {
                    final_recipient: Some("bob@example.org".into()),
                    action: action.map(str::to_string),
                    status: status.map(str::to_string),
                    ..DsnRecipient::default()
                })
                .collect(),
            OriginalHeaders::default(),
        )
    }

    #[test]
    fn each_auto_reply_header_makes_a_threaded_message_automatic() {
        let cases: &[(&str, &str)] = &[
            ("Auto-Submitted", "auto-replied"),
            (
                "Auto-Submitted",
                "auto-replied; owner-email=\"ann@example.com\"",
            ),
            ("Auto-Submitted", "auto-generated"),
            ("Auto-Submitted", "auto-notified"),
            ("X-Autoreply", "yes"),
            ("X-Autorespond", "Auto-Reply"),
            ("X-Autoresponder", "true"),
            ("Precedence", "auto_reply"),
            ("Precedence", "bulk"),
            ("Precedence", "junk"),
            ("Precedence", "list"),
            ("X-MS-Exchange-Inbox-Rules-Loop", "ann@example.com"),
            (
                "X-MS-Exchange-Generated-Message-Source",
                "Mailbox Rules Agent",
            ),
            (
                "Content-Type",
                "multipart/report; report-type=disposition-notification; boundary=x",
            ),
        ];
        for (name, value) in cases {
            let p = message(&[(name, value)], "Re: Your demo", "Thanks");
            assert_eq!(classify(&p), Classification::AutoReply, "{name}: {value}");
        }
    }

    #[test]
    fn headers_that_say_not_automatic_leave_a_human_reply() {
        let cases: &[(&str, &str)] = &[
            ("Auto-Submitted", "no"),
            ("X-Autoreply", "no"),
            ("Precedence", "first-class"),
            ("X-Auto-Response-Suppress", "All"),
            ("X-Mailer", "Apple Mail (2.3731)"),
        ];
        for (name, value) in cases {
            let p = message(&[(name, value)], "Re: Your demo", "Sounds good, call me.");
            assert_eq!(classify(&p), Classification::HumanReply, "{name}: {value}");
        }
    }

    #[test]
    fn out_of_office_subjects_in_every_language() {
        let auto = [
            "Automatic reply: Your demo",
            "Auto-Reply: Your demo",
            "AutoReply",
            "Out of Office: Your demo",
            "OUT OF OFFICE",
            "Out-of-office until Monday",
            "Abwesenheitsnotiz: Ihre Demo",
            "Automatische Antwort: Ihre Demo",
            "Réponse automatique : Votre démo",
            "Absence : Votre démo",
            "Respuesta automática: Su demo",
            "Fuera de la oficina",
            "Afwezig: Uw demo",
            "Automatisch antwoord: Uw demo",
            "OOO: back Monday",
        ];
        for subject in auto {
            assert!(is_out_of_office_subject(subject), "{subject}");
            let p = message(&[], subject, "");
            assert_eq!(classify(&p), Classification::AutoReply, "{subject}");
        }
        let not_auto = [
            "Re: Out of office? Rewarm your leads",
            "AW: Abwesenheitsnotiz",
            "Absenteeism report",
            "Awaymission",
            "Your demo",
            "",
        ];
        for subject in not_auto {
            assert!(!is_out_of_office_subject(subject), "{subject}");
        }
    }

    #[test]
    fn out_of_office_bodies_without_headers_in_every_language() {
        let auto = [
            "I am out of the office until 12 March with limited access to email.",
            "Thank you for your message. I'm currently on vacation and will respond upon my return.",
            "Ich bin bis zum 12.03.2027 nicht im Büro. In dringenden Fällen wenden Sie sich an Max.",
            "Vielen Dank. Ich bin bis 12. März im Urlaub und habe keinen Zugriff. Nach meiner Rückkehr melde ich mich.",
            "Je suis absente du bureau jusqu'au 12/03/2027. Pour toute urgence, contactez Luc.",
            "Estoy fuera de la oficina hasta el 12 de marzo. En caso de urgencia, llame a Ana.",
            "Ik ben afwezig tot en met 12 maart. Voor dringende zaken kunt u Piet bellen.",
        ];
        for text in auto {
            let p = message(&[], "Re: Your demo", text);
            assert_eq!(classify(&p), Classification::AutoReply, "{text}");
        }
        let human = [
            "I was out of the office last week, sorry. Yes, let's talk Thursday.",
            "I was on vacation — back now and interested!",
            "Je suis de retour, appelez-moi.",
        ];
        for text in human {
            let p = message(&[], "Re: Your demo", text);
            assert_eq!(classify(&p), Classification::HumanReply, "{text}");
        }
    }

    #[test]
    fn helpdesk_acknowledgements_are_automatic() {
        let cases: &[(&str, &str)] = &[
            (
                "[Ticket #48213] Your demo",
                "We have received your request and a member of our team will respond shortly.",
            ),
            (
                "Re: Your demo",
                "Thank you for contacting Example Support. Your ticket number is 48213.",
            ),
            (
                "Re: Your demo",
                "This is an automated response. A member of our team will get back to you.",
            ),
            (
                "Re: Ihre Demo",
                "Wir haben Ihre Anfrage erhalten. Ihre Vorgangsnummer lautet 4711.",
            ),
            (
                "Re: Votre démo",
                "Ceci est un message automatique, merci de ne pas répondre.",
            ),
        ];
        for (subject, text) in cases {
            let p = message(&[], subject, text);
            assert_eq!(classify(&p), Classification::AutoReply, "{text}");
        }
        let mut noreply = message(&[], "Your order", "Thanks");
        noreply.from = Some("no-reply@shop.example".into());
        assert_eq!(classify(&noreply), Classification::AutoReply);
        let human = message(
            &[],
            "Re: Your demo",
            "We have received your proposal and would like to talk.",
        );
        assert_eq!(classify(&human), Classification::HumanReply);
    }

    #[test]
    fn list_and_newsletter_mail_is_other() {
        for header in ["List-Id", "List-Unsubscribe", "List-Post"] {
            let p = message(
                &[(header, "<news.example.com>"), ("Precedence", "bulk")],
                "Our March news",
                "Unsubscribe",
            );
            assert_eq!(classify(&p), Classification::Other, "{header}");
        }
        let list_oof = message(
            &[("List-Id", "<x>"), ("Auto-Submitted", "auto-replied")],
            "Out of office",
            "",
        );
        assert_eq!(classify(&list_oof), Classification::AutoReply);
    }

    #[test]
    fn removal_requests_in_every_language() {
        let cases = [
            "Please unsubscribe me.",
            "UNSUBSCRIBE",
            "Remove me from your list, thanks.",
            "Kindly take me off your mailing list.",
            "Stop emailing me.",
            "Please stop.",
            "Please stop sending these.",
            "No more emails please.",
            "I'd like to opt out.",
            "Not interested, please remove me.",
            "Bitte melden Sie mich ab.",
            "Ich möchte mich abmelden.",
            "Bitte aus dem Verteiler nehmen, keine E-Mails mehr.",
            "Merci de me désinscrire de votre liste.",
            "Je souhaite me désabonner.",
            "Por favor, darme de baja.",
            "No quiero recibir más correos.",
            "Graag afmelden.",
            "Verwijder mij van uw lijst.",
        ];
        for text in cases {
            let p = message(&[], "Re: Your demo", text);
            assert_eq!(classify(&p), Classification::Unsubscribe, "{text}");
        }
        let subject = message(&[], "Unsubscribe", "");
        assert_eq!(classify(&subject), Classification::Unsubscribe);
        // A reply keeps our subject; whatever it says, it is not the replier's request.
        let ours = message(&[], "Re: Opt out of manual follow-ups", "Tell me more.");
        assert_eq!(classify(&ours), Classification::HumanReply);
    }

    #[test]
    fn removal_words_that_are_not_requests_leave_a_human_reply() {
        let cases = [
            "I do not want to unsubscribe, I want the price list.",
            "Please don't remove me, just send it next month.",
            "Ich will mich nicht abmelden, bitte rufen Sie an.",
            "Please stop by our booth at the fair.",
            "Unsubscribe: https://acme.example/u/k1.abc",
            "To stop receiving these emails, visit www.acme.example/unsubscribe",
            "Sounds good, let's talk.",
        ];
        for text in cases {
            let p = message(&[], "Re: Your demo", text);
            assert_eq!(classify(&p), Classification::HumanReply, "{text}");
        }
    }

    #[test]
    fn delivery_reports_by_status_and_action() {
        type Entries<'a> = &'a [(Option<&'a str>, Option<&'a str>)];
        let cases: &[(Entries, Classification)] = &[
            (
                &[(Some("failed"), Some("5.1.1"))],
                Classification::HardBounce,
            ),
            (
                &[(Some("failed"), Some("5.7.1"))],
                Classification::HardBounce,
            ),
            (&[(Some("failed"), None)], Classification::HardBounce),
            (
                &[(Some("delayed"), Some("4.4.7"))],
                Classification::SoftBounce,
            ),
            (
                &[(Some("failed"), Some("4.2.2"))],
                Classification::SoftBounce,
            ),
            (&[(Some("delayed"), None)], Classification::SoftBounce),
            (
                &[
                    (Some("delayed"), Some("4.4.1")),
                    (Some("failed"), Some("5.1.1")),
                ],
                Classification::HardBounce,
            ),
            (
                &[
                    (Some("delivered"), Some("2.0.0")),
                    (Some("delayed"), Some("4.2.2")),
                ],
                Classification::SoftBounce,
            ),
            (&[(Some("delivered"), Some("2.0.0"))], Classification::Other),
            (&[], Classification::Other),
        ];
        for (entries, expected) in cases {
            let mut p = message(&[], "Delivery Status Notification", "");
            p.from = Some("mailer-daemon@mx.example.net".into());
            p.report = Some(dsn(entries));
            assert_eq!(classify(&p), *expected, "{entries:?}");
        }
    }

    #[test]
    fn feedback_reports_are_complaints() {
        let mut p = message(&[], "Complaint", "This is an email abuse report");
        p.report = Some(Report::Feedback(OriginalHeaders::default()));
        assert_eq!(classify(&p), Classification::Complaint);
    }

    #[test]
    fn mail_system_notices_without_a_report_go_by_their_wording() {
        let cases: &[(&str, Classification)] = &[
            (
                "Delivery is delayed; this is a temporary problem and we will retry.",
                Classification::SoftBounce,
            ),
            (
                "This is a permanent error: user unknown.",
                Classification::HardBounce,
            ),
            (
                "Your DMARC aggregate report is attached.",
                Classification::Other,
            ),
        ];
        for (text, expected) in cases {
            for sender in ["MAILER-DAEMON@mx.example.net", "postmaster@example.org"] {
                let mut p = message(&[], "Notice", text);
                p.from = Some(sender.to_lowercase());
                assert_eq!(classify(&p), *expected, "{sender}: {text}");
            }
        }
    }

    #[test]
    fn a_plain_threaded_reply_is_human_and_a_senderless_one_other() {
        let p = message(&[], "Re: Your demo", "Yes — Tuesday at 10?");
        assert_eq!(
            verdict(&p),
            Verdict {
                classification: Classification::HumanReply,
                reason: "from a person"
            }
        );
        let mut anonymous = p.clone();
        anonymous.from = None;
        assert_eq!(classify(&anonymous), Classification::Other);
    }

    #[test]
    fn a_standard_report_lists_every_recipient_and_hard_wins() {
        let raw = crlf(
            "From: MAILER-DAEMON@mx.example.net\n\
             To: bounce+k1.T.t@bounce.acme.example\n\
             Subject: Undelivered Mail Returned to Sender\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n\
             --b\nContent-Type: text/plain\n\nTwo problems.\n\
             --b\nContent-Type: message/delivery-status\n\n\
             Reporting-MTA: dns; mx.example.net\n\n\
             Final-Recipient: rfc822; cy@example.net\nAction: delayed\nStatus: 4.4.1\n\n\
             Final-Recipient: rfc822; bob@example.org\nAction: failed\nStatus: 5.1.1\n\
             --b\nContent-Type: message/rfc822\n\n\
             Message-ID: <k1.AQ.x@acme.example>\nTo: bob@example.org, cy@example.net\nSubject: Hi\n\nHello\n\
             --b--\n",
        );
        let p = parse(&raw).unwrap();
        let Some(Report::Delivery(recipients, original)) = &p.report else {
            panic!("no report: {p:?}")
        };
        let finals: Vec<_> = recipients
            .iter()
            .map(|r| r.final_recipient.as_deref())
            .collect();
        assert_eq!(finals, [Some("cy@example.net"), Some("bob@example.org")]);
        assert_eq!(original.message_id.as_deref(), Some("k1.AQ.x@acme.example"));
        assert_eq!(original.to, ["bob@example.org", "cy@example.net"]);
        assert_eq!(classify(&p), Classification::HardBounce);
    }

    #[test]
    fn a_feedback_report_with_a_redacted_original_names_the_original_recipient() {
        let raw = crlf(
            "From: fbl@mailbox.example\nSubject: complaint\n\
             Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\n\n\
             --b\nContent-Type: text/plain\n\nAbuse report.\n\
             --b\nContent-Type: message/feedback-report\n\n\
             Feedback-Type: abuse\nVersion: 1\nOriginal-Rcpt-To: <Jane@Example.com>\n\
             --b\nContent-Type: text/rfc822-headers\n\n\
             Message-ID: <k1.AQ.y@acme.example>\nTo: redacted\nSubject: Hi\n\
             --b--\n",
        );
        let p = parse(&raw).unwrap();
        let expected = OriginalHeaders {
            message_id: Some("k1.AQ.y@acme.example".into()),
            to: vec!["jane@example.com".into()],
        };
        assert_eq!(p.report, Some(Report::Feedback(expected)));
        assert_eq!(classify(&p), Classification::Complaint);
    }
}
