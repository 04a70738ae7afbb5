//! Compose: a delivery becomes a complete RFC 5322 message — render the step's templates
//! with the lead's data (plus its unsubscribe link and the sender's postal address), rewrite
//! links for click tracking when the campaign asks for it, and build the message with
//! lettre, with the one-click unsubscribe headers (RFC 8058) and a Message-ID unique to the
//! delivery. Dispatch and `preview` both go through `Composer::build`, so a preview is
//! exactly what would be sent.

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use lettre::message::dkim::DkimConfig;

use crate::config::{Campaign, Settings};
use crate::domain::lead::Lead;
use crate::outbound::body::text_body;
use crate::outbound::links;
use crate::outbound::mime;
use crate::outbound::render::{self, RenderedEmail, Templates};
use crate::tokens::{TokenKeys, TokenKind};
use crate::transport::OutgoingEmail;

#[derive(Debug, thiserror::Error)]
#[error("cannot build the message: {0}")]
pub struct ComposeError(String);

/// Builds messages for one configuration and set of signing keys.
pub struct Composer<'a> {
    settings: &'a Settings,
    templates: &'a Templates,
    keys: &'a TokenKeys,
    dkim: Option<&'a DkimConfig>,
}

impl<'a> Composer<'a> {
    pub fn new(
        settings: &'a Settings,
        templates: &'a Templates,
        keys: &'a TokenKeys,
        dkim: Option<&'a DkimConfig>,
    ) -> Self {
        Self {
            settings,
            templates,
            keys,
            dkim,
        }
    }

    /// The Message-ID of a delivery (without angle brackets): a signed Reply token, so a reply's
    /// In-Reply-To / References lead back to the delivery without trusting anything else.
    pub fn message_id(&self, delivery_id: i64) -> String {
        format!(
            "{}@{}",
            self.keys.sign(TokenKind::Reply, delivery_id, 0),
            self.settings.sender.message_id_domain
        )
    }

    /// `reply+TOKEN@reply_domain`, when replies come back through our own domain.
    pub fn reply_address(&self, delivery_id: i64) -> Option<String> {
        let domain = self.settings.inbound.reply_domain.as_deref()?;
        Some(format!(
            "reply+{}@{domain}",
            self.keys.sign(TokenKind::Reply, delivery_id, 0)
        ))
    }

    /// The VERP envelope sender `bounce+TOKEN@bounce_domain`, so late bounces tie to the delivery.
    pub fn bounce_address(&self, delivery_id: i64) -> Option<String> {
        let domain = self.settings.inbound.bounce_domain.as_deref()?;
        Some(format!(
            "bounce+{}@{domain}",
            self.keys.sign(TokenKind::Bounce, delivery_id, 0)
        ))
    }

    /// The one-click unsubscribe URL of a delivery.
    pub fn unsubscribe_url(&self, delivery_id: i64) -> String {
        format!(
            "{}/u/{}",
            self.settings.http.public_url,
            self.keys.sign(TokenKind::Unsubscribe, delivery_id, 0)
        )
    }

    /// The tracked URL of link `index` (pointing at `url`) of a delivery.
    pub fn click_url(&self, delivery_id: i64, index: u32, url: &str) -> String {
        let token = self
            .keys
            .sign_with(TokenKind::Click, delivery_id, index, url.as_bytes());
        format!(
            "{}/c/{token}?u={}",
            self.settings.http.public_url,
            percent_encode(url)
        )
    }

    /// Everything a template sees for this delivery.
    pub fn context(
        &self,
        lead: &Lead,
        campaign: &str,
        step: u32,
        delivery_id: i64,
        now: DateTime<Utc>,
    ) -> tera::Context {
        self.context_with(
            lead,
            campaign,
            step,
            &self.unsubscribe_url(delivery_id),
            now,
        )
    }

    /// [`Composer::context`] with the delivery's unsubscribe URL already signed.
    fn context_with(
        &self,
        lead: &Lead,
        campaign: &str,
        step: u32,
        unsubscribe_url: &str,
        now: DateTime<Utc>,
    ) -> tera::Context {
        let s = self.settings;
        let mut ctx = render::context(lead, campaign, step, &s.sender, s.default_tz, now);
        ctx.insert("unsubscribe_url", unsubscribe_url);
        ctx.insert("postal_address", &s.compliance.postal_address);
        ctx
    }

    /// Renders `template` as step `step` of `campaign` for `lead` (links tracked if the
    /// campaign says so).
    pub fn render(
        &self,
        lead: &Lead,
        campaign: &Campaign,
        template: &str,
        step: u32,
        delivery_id: i64,
        now: DateTime<Utc>,
    ) -> Result<RenderedEmail, String> {
        let unsubscribe = self.unsubscribe_url(delivery_id);
        self.render_with(
            lead,
            campaign,
            template,
            step,
            delivery_id,
            &unsubscribe,
            now,
        )
    }

    /// [`Composer::render`] with the delivery's unsubscribe URL already signed.
    #[allow(clippy::too_many_arguments)]
    fn render_with(
        &self,
        lead: &Lead,
        campaign: &Campaign,
        template: &str,
        step: u32,
        delivery_id: i64,
        unsubscribe: &str,
        now: DateTime<Utc>,
    ) -> Result<RenderedEmail, String> {
        let ctx = self.context_with(lead, &campaign.name, step, unsubscribe, now);
        let mut rendered = self
            .templates
            .render(template, &ctx)
            .map_err(|e| e.to_string())?;
        // A link may carry a lead's data: only http(s), mailto, tel and relative links stay.
        if let Some(html) = &rendered.html {
            let (safe, replaced) = links::neutralise_unsafe_links(html);
            if replaced > 0 {
                tracing::warn!(
                    lead = lead.id,
                    template,
                    replaced,
                    "Links with an unsafe scheme (javascript:, data: …) were replaced by `#`"
                );
            }
            rendered.html = Some(safe);
        }
        if !campaign.track_clicks {
            return Ok(rendered);
        }
        let (text, html) = links::rewrite(
            &rendered.text,
            rendered.html.as_deref(),
            &[unsubscribe],
            |i, url| self.click_url(delivery_id, i, url),
        );
        Ok(RenderedEmail {
            subject: rendered.subject,
            text,
            html,
        })
    }

    /// Renders and composes a delivery: what dispatch sends and `preview` shows.
    pub fn build(
        &self,
        lead: &Lead,
        campaign: &Campaign,
        template: &str,
        step: u32,
        delivery_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(RenderedEmail, OutgoingEmail), String> {
        // Each token is signed once per delivery (the unsubscribe URL is in the body and a
        // header; the Reply token is the Message-ID and the Reply-To).
        let tokens = self.tokens(delivery_id);
        let rendered = self.render_with(
            lead,
            campaign,
            template,
            step,
            delivery_id,
            &tokens.unsubscribe_url,
            now,
        )?;
        let message = self
            .compose_with(lead, &rendered, delivery_id, tokens, now)
            .map_err(|e| e.to_string())?;
        Ok((rendered, message))
    }

    /// The signed values of one delivery's message.
    fn tokens(&self, delivery_id: i64) -> Tokens {
        let reply = self.keys.sign(TokenKind::Reply, delivery_id, 0);
        Tokens {
            unsubscribe_url: self.unsubscribe_url(delivery_id),
            reply_address: self
                .settings
                .inbound
                .reply_domain
                .as_deref()
                .map(|domain| format!("reply+{reply}@{domain}")),
            message_id: format!("{reply}@{}", self.settings.sender.message_id_domain),
            bounce_address: self.bounce_address(delivery_id),
        }
    }

    /// Builds the message. Lead data only reaches headers through lettre's encoders (the
    /// display name is an RFC 2047 word, the subject is encoded), so it cannot add a header.
    pub fn compose(
        &self,
        lead: &Lead,
        rendered: &RenderedEmail,
        delivery_id: i64,
        message_id: String,
        date: DateTime<Utc>,
    ) -> Result<OutgoingEmail, ComposeError> {
        let tokens = Tokens {
            message_id,
            ..self.tokens(delivery_id)
        };
        self.compose_with(lead, rendered, delivery_id, tokens, date)
    }

    fn compose_with(
        &self,
        lead: &Lead,
        rendered: &RenderedEmail,
        delivery_id: i64,
        tokens: Tokens,
        date: DateTime<Utc>,
    ) -> Result<OutgoingEmail, ComposeError> {
        let Tokens {
            unsubscribe_url,
            reply_address,
            message_id,
            bounce_address,
        } = tokens;
        let sender = &self.settings.sender;
        let to_address = lead
            .email
            .as_str()
            .parse::<lettre::Address>()
            .map_err(|e| ComposeError(e.to_string()))?;
        let name = [lead.first_name.as_deref(), lead.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
            .replace(
                |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}',
                " ",
            );
        let name = crate::outbound::render::truncate_chars(name.trim().to_string(), 100);
        let to = Mailbox::new((!name.is_empty()).then_some(name), to_address);
        let mut list_unsubscribe = format!("<{unsubscribe_url}>");
        if let Some(mailto) = &self.settings.compliance.unsubscribe_mailto {
            list_unsubscribe.push_str(&format!(", <mailto:{mailto}?subject=unsubscribe>"));
        }
        // Replies to reply+TOKEN@… match their delivery; the display name stays the human one.
        let reply_to = match reply_address.and_then(|a| a.parse::<lettre::Address>().ok()) {
            Some(address) => {
                let name = sender
                    .reply_to
                    .as_ref()
                    .and_then(|m| m.name.clone())
                    .or_else(|| sender.from.name.clone());
                Some(Mailbox::new(name, address))
            }
            None => sender.reply_to.clone(),
        };
        let parts = mime::Parts {
            from: &sender.from,
            to: &to,
            subject: &rendered.subject,
            date,
            message_id: &message_id,
            list_unsubscribe: &list_unsubscribe,
            reply_to: reply_to.as_ref(),
            text: text_body(&rendered.text),
            html: rendered.html.as_deref().map(text_body),
        };
        let bytes = match self.dkim {
            None => mime::write(&parts, &mime::boundary()),
            Some(dkim) => signed(parts, dkim)?,
        };
        Ok(OutgoingEmail {
            delivery_id,
            envelope_from: bounce_address.unwrap_or_else(|| sender.from.email.to_string()),
            envelope_to: lead.email.to_string(),
            message_id,
            bytes,
        })
    }
}

/// A message signed with DKIM: built by lettre ([`mime::lettre_message`]), whose `Message`
/// the signature needs.
fn signed(parts: mime::Parts<'_>, dkim: &DkimConfig) -> Result<Vec<u8>, ComposeError> {
    let mut message = mime::lettre_message(parts, None).map_err(ComposeError)?;
    message.sign(dkim);
    Ok(message.formatted())
}

/// What a delivery's message carries that is signed for it (see [`Composer::message_id`],
/// [`Composer::reply_address`], [`Composer::bounce_address`], [`Composer::unsubscribe_url`]).
struct Tokens {
    unsubscribe_url: String,
    reply_address: Option<String>,
    message_id: String,
    bounce_address: Option<String>,
}

/// Percent-encodes a URL for use as a query value (RFC 3986 unreserved characters kept).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            percent_encode("https://a.example/p?x=1&y=é"),
            "https%3A%2F%2Fa.example%2Fp%3Fx%3D1%26y%3D%C3%A9"
        );
    }
}
