//! What a failed SMTP step means for the message: the pure half of the outcome table in the
//! [`smtp`](super) module docs. A negative reply becomes a typed [`SendError`] carrying the
//! reply code and enhanced status (and, for a 5xx to RCPT TO, "recipient refused"); a
//! broken conversation is retried on a new connection before the body, and unknown after it.

use std::time::Duration;

use lettre::transport::smtp::Error as SmtpError;

use crate::transport::{SendError, SmtpReply, TransportFault};

/// Where in a message's conversation a reply or failure came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    MailFrom,
    RcptTo,
    Data,
    /// The body and its final `.` were (being) sent.
    EndOfData,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::MailFrom => "MAIL FROM",
            Stage::RcptTo => "RCPT TO",
            Stage::Data => "DATA",
            Stage::EndOfData => "end of data",
        }
    }
}

/// What to do after a command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// A negative reply about this message; the session can go on (after RSET if needed).
    Refused(SendError),
    /// A negative reply, and the session is over (421): message refused, drop the connection.
    RefusedDrop(SendError),
    /// The connection broke before the body: retry the message on another connection. The
    /// error (`Transient`) says why, with the server's reply if it gave one.
    NotSent(SendError),
    /// The connection broke once the body was on the wire (an `Unknown` error).
    Unknown(SendError),
}

/// Pure classification of a failed step. `reply` is the server's negative reply (code and
/// text) when there was one; `None` means no readable reply (I/O error, EOF, timeout, garbage).
pub(super) fn classify(stage: Stage, reply: Option<(u16, &str)>, failure: &str) -> Verdict {
    let Some((code, text)) = reply else {
        return no_reply(stage, format!("{}: {failure}", stage.name()), None);
    };
    let detail = format!("{} refused: {code} {text}", stage.name());
    let fields = SmtpReply::new(code, text);
    let transient = || SendError::transient(detail.clone()).with_smtp_reply(fields);
    match code {
        // The server is closing the session. Before the body this says nothing about
        // the message: try it on a new connection. After the body it is a refusal.
        421 if stage != Stage::EndOfData => Verdict::NotSent(transient()),
        421 => Verdict::RefusedDrop(transient()),
        // "Authentication required/failed" is about our session, not the message: the
        // transport's fault (the breaker pauses it; the delivery keeps its attempts).
        530 | 535 => Verdict::Refused(transient().with_transport_fault(TransportFault::Auth)),
        400..=499 => Verdict::Refused(transient()),
        500..=599 => {
            let refused = SendError::permanent(detail).with_smtp_reply(fields);
            // A 5xx to RCPT TO refuses the address itself: a hard bounce.
            Verdict::Refused(if stage == Stage::RcptTo {
                refused.with_recipient_refused()
            } else {
                refused
            })
        }
        // A "negative" reply with a code outside 4xx/5xx cannot come from lettre;
        // treat it like no reply at all.
        _ => no_reply(stage, detail, Some(fields)),
    }
}

fn no_reply(stage: Stage, detail: String, reply: Option<SmtpReply>) -> Verdict {
    if stage == Stage::EndOfData {
        Verdict::Unknown(SendError::unknown(format!(
            "{detail} (the server may have accepted the message)"
        )))
    } else {
        Verdict::NotSent(SendError::transient(detail).with_smtp_reply(reply))
    }
}

/// The reply code and text of a lettre error, if it carries a reply.
pub(super) fn reply_of(error: &SmtpError) -> Option<(u16, String)> {
    let code = u16::from(error.status()?);
    let text = std::error::Error::source(error)
        .map(|s| s.to_string())
        .unwrap_or_default();
    Some((code, text))
}

/// A lettre error while opening a session (greeting, EHLO, STARTTLS, AUTH) as a `Transient`
/// error: `what` failed, with the server's reply as fields when it gave one (a `421 4.7.0
/// too many connections` there is a domain pushing back).
pub(super) fn session_error(what: &str, error: &SmtpError) -> SendError {
    let reply = reply_of(error).map(|(code, text)| SmtpReply::new(code, &text));
    SendError::transient(format!("{what}: {error}")).with_smtp_reply(reply)
}

/// Runs one SMTP step under the timeout, as a classified failure.
pub(super) async fn step<T>(
    stage: Stage,
    timeout: Duration,
    fut: impl Future<Output = Result<T, SmtpError>>,
) -> Result<T, Verdict> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            let reply = reply_of(&e);
            Err(classify(
                stage,
                reply.as_ref().map(|(c, t)| (*c, t.as_str())),
                &e.to_string(),
            ))
        }
        Err(_) => Err(classify(
            stage,
            None,
            &format!("no reply within {timeout:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::EnhancedStatus;

    const STAGES: [Stage; 4] = [
        Stage::MailFrom,
        Stage::RcptTo,
        Stage::Data,
        Stage::EndOfData,
    ];

    #[test]
    fn a_4xx_reply_is_transient_and_a_5xx_permanent_with_the_servers_text() {
        for stage in STAGES {
            match classify(stage, Some((450, "4.2.0 mailbox busy")), "x") {
                Verdict::Refused(e) if e.is_transient() => {
                    assert!(e.message().contains("450 4.2.0 mailbox busy"), "{e}");
                    assert_eq!(
                        e.smtp_reply(),
                        Some(SmtpReply {
                            code: 450,
                            enhanced: Some(EnhancedStatus {
                                class: 4,
                                subject: 2,
                                detail: 0
                            })
                        })
                    );
                }
                other => panic!("{stage:?}: {other:?}"),
            }
            match classify(stage, Some((550, "5.1.1 no such user")), "x") {
                Verdict::Refused(e) if e.is_permanent() => {
                    assert!(e.message().contains("550 5.1.1 no such user"), "{e}");
                    assert_eq!(e.smtp_reply().map(|r| r.code), Some(550));
                }
                other => panic!("{stage:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn only_a_5xx_to_rcpt_to_is_a_hard_bounce() {
        for stage in STAGES {
            let Verdict::Refused(e) = classify(stage, Some((550, "5.1.1 no such user")), "x")
            else {
                panic!("{stage:?}");
            };
            assert_eq!(e.is_hard_bounce(), stage == Stage::RcptTo, "{stage:?}");
            let Verdict::Refused(e) = classify(stage, Some((450, "4.2.0 busy")), "x") else {
                panic!("{stage:?}");
            };
            assert!(!e.is_hard_bounce(), "{stage:?}");
        }
    }

    #[test]
    fn a_broken_conversation_before_the_body_is_retried_and_after_it_is_unknown() {
        for stage in [Stage::MailFrom, Stage::RcptTo, Stage::Data] {
            assert!(matches!(
                classify(stage, None, "network error"),
                Verdict::NotSent(_)
            ));
        }
        assert!(matches!(
            classify(Stage::EndOfData, None, "incomplete response"),
            Verdict::Unknown(_)
        ));
    }

    #[test]
    fn a_421_closing_reply_retries_before_the_body_and_is_transient_after_it() {
        match classify(Stage::MailFrom, Some((421, "4.3.2 shutting down")), "x") {
            // The reply stays with the error: a later give-up still says "421".
            Verdict::NotSent(e) => assert_eq!(e.smtp_reply().map(|r| r.code), Some(421)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(Stage::EndOfData, Some((421, "4.3.2 shutting down")), "x"),
            Verdict::RefusedDrop(e) if e.is_transient()
        ));
    }

    #[test]
    fn authentication_required_is_not_blamed_on_the_message() {
        assert!(matches!(
            classify(
                Stage::MailFrom,
                Some((530, "5.7.0 Authentication required")),
                "x"
            ),
            Verdict::Refused(e) if e.is_transient()
        ));
    }
}
