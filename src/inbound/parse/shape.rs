//! What makes a message look like a bounce, whatever mail system wrote it: its sender (a
//! mail-system address or display name, an empty Return-Path), `Auto-Submitted`, a subject and
//! a body of the bounce families in several languages, a returned copy of the message that
//! failed, and SMTP status codes in the text. The signals are read once, here, into a
//! [`BounceShape`]; [`super::bounce`] decides from them whether to read the message as a
//! delivery report, and classification whether an unclear one goes to review.

use super::ParsedInbound;
use super::fold::fold;
use super::headers::is_mail_system;
use super::status::find_status;

/// The bounce signals of one message (all false: nothing bounce-like about it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BounceShape {
    /// The sender is a mail system: its address (`MAILER-DAEMON`, `postmaster`, a vendor
    /// daemon such as `E500_SMTP_Mail_Service`) or display name ("Mail Delivery Subsystem"),
    /// or the Return-Path is empty (`<>`, what every bounce carries).
    pub from_system: bool,
    /// `Auto-Submitted` says automatic (any value but `no`).
    pub auto_submitted: bool,
    /// The subject reads like a bounce ("Undeliverable", "Returned mail", "Unzustellbar" …).
    pub subject: bool,
    /// The subject answers or forwards another ("Re:", "Fwd:" …): a person may be passing a
    /// bounce on.
    pub forwarded: bool,
    /// The body reads like a bounce (qmail, Exim, Exchange, GroupWise, Notes … wording).
    pub body: bool,
    /// `X-Failed-Recipients` names the failed addresses (Exim).
    pub failed_header: bool,
    /// The message carries a copy of a message as it was sent — an attached `message/rfc822`
    /// or `text/rfc822-headers` part, or an inline copy with its transport headers — as a
    /// bounce returns the message that failed.
    pub returned_copy: bool,
    /// The text holds an SMTP failure code (`550`, `5.1.1`, `4.2.2` …).
    pub status_code: bool,
}

impl BounceShape {
    /// Whether the message is a bounce notice to be read as a delivery report: it names its
    /// failed recipients, or comes from a mail system (or says it is automatic) and reads like
    /// one, or comes from a mail system with an SMTP failure code in its text, or both its
    /// subject and body read like one and it forwards nothing.
    pub fn is_notice(&self) -> bool {
        let reads_like_one = self.subject || self.body;
        self.failed_header
            || ((self.from_system || self.auto_submitted) && reads_like_one)
            || (self.from_system && self.status_code)
            || (!self.forwarded && self.subject && self.body)
    }

    /// Whether anything about the message says bounce, so strongly that it must not go to
    /// sales as a person's reply: a returned copy, a bounce subject, or bounce wording with a
    /// status code. Such a message that is not clearly a bounce goes to review.
    pub fn says_bounce(&self) -> bool {
        self.from_system
            || self.failed_header
            || self.returned_copy
            || self.subject
            || (self.body && (self.status_code || self.auto_submitted))
    }
}

/// Subjects of bounce notices (folded, matched anywhere), in English, German, French,
/// Spanish, Italian, Dutch, Portuguese, Swedish and Chinese.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undelivered mail returned to sender",
    "mail delivery failed",
    "delivery status notification (failure)",
    "delivery status notification (delay)",
    "delivery status notification",
    "undeliverable",
    "undelivered mail",
    "undelivered message",
    "returned mail",
    "returned message",
    "delivery failure",
    "failure notice",
    "delivery has failed",
    "delivery notification: delivery has failed",
    "could not send message",
    "could not be delivered",
    "failed to deliver",
    "message not delivered",
    "mail delivery status",
    "mail system error",
    "nondeliverable",
    "non-deliverable",
    "delayed mail",
    "delivery delayed",
    "message delayed",
    "nicht zustellbar",
    "unzustellbar",
    "zustellung verzogert",
    "zustellstatus",
    "non remis",
    "non distribuable",
    "remise differee",
    "echec de la remise",
    "no se puede entregar",
    "no entregado",
    "non recapitabile",
    "impossibile recapitare",
    "onbestelbaar",
    "kan niet worden bezorgd",
    "nao e possivel entregar",
    "nao entregue",
    "ej levererbart",
    "niedostarczalne",
    "退信",
    "未送达",
];

/// Wording of bounce notices (folded, matched anywhere near the top of the body).
const BOUNCE_BODIES: &[&str] = &[
    // Exim
    "this message was created automatically by mail delivery software",
    "the following address(es) failed",
    // qmail, Yahoo
    "this is the qmail-send program",
    "i wasn't able to deliver your message to the following addresses",
    "we were unable to deliver your message to the following address",
    // Postfix
    "this is the mail system at host",
    "this is the postfix program at host",
    "i'm sorry to have to inform you",
    // Sendmail, AOL
    "the following addresses had permanent fatal errors",
    "transcript of session follows",
    "could not send message for past",
    // Exchange and Outlook, old and new
    "did not reach the following recipient(s)",
    "delivery has failed to these recipients",
    "your message did not reach some or all of the intended recipients",
    "delivery to the following recipients failed",
    "delivery to the following recipient failed",
    "delivery to the following recipient has failed",
    "delivery to the following recipients has been delayed",
    "delivery to the following recipient has been delayed",
    "this is an automatically generated delivery status notification",
    "couldn't be delivered",
    // GroupWise, Lotus Notes, SMTP32, MDaemon, Courier, vendors
    "was undeliverable to the following",
    "message status - undeliverable",
    "was not delivered to:",
    "original message follows",
    "had permanent fatal delivery errors",
    "temporary delivery problems",
    "undeliverable mail",
    "failed recipients",
    "this report relates to a message you sent",
    "cannot be delivered to the following recipients",
    "your message to the following recipients cannot be delivered",
    "this message was undeliverable",
    "an error occurred while delivering your message",
    // generic
    "could not be delivered to one or more",
    "your message wasn't delivered",
    "your message was not delivered",
    "your message could not be delivered",
    "your message cannot be delivered",
    "message could not be delivered",
    "unable to deliver your message",
    "the email account that you tried to reach does not exist",
    "there was a temporary problem delivering your message",
    "has not yet been delivered",
    "delivery incomplete",
    // translations (Exchange and others)
    "die zustellung an folgende empfanger",
    "nicht zugestellt werden",
    "la remise aux destinataires",
    "n'a pas pu etre remis",
    "error en la entrega a estos destinatarios",
    "no se pudo entregar",
    "recapito non riuscito",
    "bezorging is mislukt",
    "falha na entrega",
    "leveransen misslyckades",
    "не может быть доставлено",
    "не доставлено",
    "邮件被退回",
];

/// Display names (folded) mail systems sign their notices with.
const SYSTEM_NAMES: &[&str] = &[
    "mail delivery subsystem",
    "mail delivery system",
    "mail delivery service",
    "mail administrator",
    "mailer-daemon",
    "mailer daemon",
    "postmaster",
    "courier mail server",
    "groupwise internet agent",
    "mail router",
];

/// The bounce signals of a message: `p` as parsed so far (headers, sender, subject), its
/// whole text body `body` (before quote stripping), and whether it has an attached copy of a
/// message (`attached_copy`).
pub(super) fn bounce_shape(p: &ParsedInbound, body: &str, attached_copy: bool) -> BounceShape {
    let subject = fold(&p.subject);
    let head: String = body.chars().take(16 * 1024).collect();
    let folded_head = fold(&head);
    let forwarded = [
        "re:", "re :", "aw:", "sv:", "antw:", "r:", "rv:", "wg:", "fw:", "fwd:", "tr:",
    ]
    .iter()
    .any(|prefix| subject.trim_start().starts_with(prefix));
    BounceShape {
        from_system: from_mail_system(p),
        auto_submitted: p
            .header("auto-submitted")
            .map(|v| fold(v.split(';').next().unwrap_or("")).trim().to_string())
            .is_some_and(|v| !v.is_empty() && v != "no"),
        subject: BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s)),
        forwarded,
        body: BOUNCE_BODIES.iter().any(|s| folded_head.contains(s)),
        failed_header: p.header("x-failed-recipients").is_some(),
        returned_copy: attached_copy || has_inline_copy(&head),
        status_code: find_status(&head).is_some(),
    }
}

/// Whether a message comes from a mail system: its sender address, the display name of its
/// From, or an empty Return-Path says so.
fn from_mail_system(p: &ParsedInbound) -> bool {
    if p.from.as_deref().is_some_and(is_mail_system)
        || p.header("return-path").is_some_and(|v| v.trim() == "<>")
    {
        return true;
    }
    let display = p
        .header("from")
        .map(|v| fold(v.split('<').next().unwrap_or("")))
        .unwrap_or_default();
    let comment = p
        .header("from")
        .and_then(|v| v.split_once('(').map(|(_, c)| fold(c)))
        .unwrap_or_default();
    SYSTEM_NAMES
        .iter()
        .any(|name| display.contains(name) || comment.contains(name))
}

/// Whether a body carries a message inline with its transport headers: a line that starts
/// with `Received:` or `Return-Path:` followed, within a few lines, by the message's own
/// `From:`, `To:` or `Message-ID:`. A person quoting a message shows neither.
fn has_inline_copy(body: &str) -> bool {
    let lines: Vec<&str> = body.lines().take(2000).collect();
    lines.iter().enumerate().any(|(i, line)| {
        let l = line.to_ascii_lowercase();
        (l.starts_with("received: ") || l.starts_with("return-path: "))
            && lines.iter().skip(i + 1).take(30).any(|next| {
                let n = next.to_ascii_lowercase();
                n.starts_with("message-id:") || n.starts_with("from: ") || n.starts_with("to: ")
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::{crlf, parse};

    fn shape_of(headers: &str, body: &str) -> BounceShape {
        parse(&crlf(&format!("{headers}\n\n{body}\n")))
            .expect("a message")
            .shape
    }

    #[test]
    fn mail_system_senders_by_address_display_name_or_empty_return_path() {
        let system = [
            "From: MAILER-DAEMON@mx.example.net",
            "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
            "From: postmaster@example.org",
            "From: E500_SMTP_Mail_Service@example.org",
            "From: MDaemon@mail.example.com",
            "From: Mercury 32 <MAISER@mail.example.net>",
            "From: MAILER-DAEMON@mail.example.net (Mail Delivery System)",
            "From: Mail Administrator <admin@mail.example.net>",
            "From: Microsoft Exchange <MicrosoftExchange329e71ec@example.net>",
            "From: Mail Router <router@example.com>",
            "From: bounce@barracuda.example.com",
            "From: GroupWise Internet Agent <gwia@example.org>",
            "Return-Path: <>\nFrom: notices@example.org",
        ];
        for headers in system {
            assert!(
                shape_of(&format!("{headers}\nSubject: x"), "x").from_system,
                "{headers}"
            );
        }
        let people = [
            "From: Ann Example <ann@example.com>",
            "From: Post Master <pm@example.com>",
            "From: daemon.fan@example.org",
            "Return-Path: <ann@example.com>\nFrom: ann@example.com",
        ];
        for headers in people {
            assert!(
                !shape_of(&format!("{headers}\nSubject: x"), "x").from_system,
                "{headers}"
            );
        }
    }

    #[test]
    fn bounce_subjects_in_many_languages() {
        let subjects = [
            "Undeliverable: Hello",
            "Returned mail: see transcript for details",
            "Returned Mail - Error During Delivery",
            "Delivery Status Notification (Failure)",
            "failure notice",
            "Mail delivery failed: returning message to sender",
            "Undelivered Mail Returned to Sender",
            "Unzustellbar: Hallo",
            "Non remis : Bonjour",
            "No se puede entregar: Hola",
            "Non recapitabile: Ciao",
            "Onbestelbaar: Hallo",
            "Não é possível entregar: Olá",
            "Zustellung verzögert: Hallo",
            "Benachrichtigung zum Zustellstatus (Verzögerung)",
            "DELIVERY FAILURE: User not listed",
            "Message status - undeliverable",
            "NOTICE: mail delivery status.",
            "Warning: could not send message for past 4 hours",
            "系统退信",
        ];
        for subject in subjects {
            let shape = shape_of(&format!("From: a@b.example\nSubject: {subject}"), "x");
            assert!(shape.subject, "{subject}");
        }
        for subject in [
            "Re: your offer",
            "Delivery of the new sofa",
            "Returning customer",
        ] {
            let shape = shape_of(&format!("From: a@b.example\nSubject: {subject}"), "x");
            assert!(!shape.subject, "{subject}");
        }
    }

    #[test]
    fn bounce_bodies_of_each_family() {
        let bodies = [
            "Hi. This is the qmail-send program at mx.example.net.",
            "This message was created automatically by mail delivery software.",
            "Your message\n\n  To: Bob\n\ndid not reach the following recipient(s):",
            "The message that you sent was undeliverable to the following:",
            "Your message\n\nwas not delivered to:\n\n  bob@example.org",
            "Sorry, we were unable to deliver your message to the following address.",
            "   ----- The following addresses had permanent fatal errors -----",
            "------ Failed Recipients ------",
            "This is the Postfix program at host mail.example.net.",
            "Unknown user: bob@example.org\n\nOriginal message follows.",
            "Die Zustellung an folgende Empfänger oder Gruppen ist fehlgeschlagen:",
            "La remise aux destinataires ou groupes suivants a échoué :",
        ];
        for body in bodies {
            assert!(
                shape_of("From: a@b.example\nSubject: x", body).body,
                "{body}"
            );
        }
        let person = "Thanks, the delivery of the chairs failed twice, can you call?";
        assert!(!shape_of("From: a@b.example\nSubject: x", person).body);
    }

    #[test]
    fn returned_copies_attached_or_inline() {
        let inline = "Sorry.\n\nReturn-Path: <bounce@acme.example>\nReceived: from x\nFrom: sales@acme.example\nTo: bob@example.org\n";
        assert!(shape_of("From: a@b.example\nSubject: x", inline).returned_copy);
        let attached = "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nSee attached.\n--b\nContent-Type: message/rfc822\n\nFrom: sales@acme.example\nMessage-ID: <k1.x@acme.example>\nSubject: Hi\n\nHello\n--b--";
        let shape = parse(&crlf(&format!(
            "From: a@b.example\nSubject: x\n{attached}\n"
        )))
        .expect("a message")
        .shape;
        assert!(shape.returned_copy);
        let quoted = "Yes.\n\nOn Tue, Paul wrote:\n> From: sales@acme.example\n> Hello";
        assert!(!shape_of("From: a@b.example\nSubject: x", quoted).returned_copy);
    }

    #[test]
    fn notices_need_a_system_sender_or_both_subject_and_body() {
        let notice = |from_system, subject, body, forwarded| BounceShape {
            from_system,
            subject,
            body,
            forwarded,
            ..BounceShape::default()
        };
        assert!(notice(true, true, false, false).is_notice());
        assert!(notice(true, false, true, false).is_notice());
        assert!(notice(false, true, true, false).is_notice());
        assert!(!notice(false, true, true, true).is_notice());
        assert!(!notice(true, false, false, false).is_notice());
        let coded = BounceShape {
            from_system: true,
            status_code: true,
            ..BounceShape::default()
        };
        assert!(coded.is_notice());
        assert!(!notice(false, true, false, false).is_notice());
        let exim = BounceShape {
            failed_header: true,
            ..BounceShape::default()
        };
        assert!(exim.is_notice());
        let auto = BounceShape {
            auto_submitted: true,
            body: true,
            ..BounceShape::default()
        };
        assert!(auto.is_notice());
    }
}
