//! One step's email for one lead, rendered and composed by the same code that sends it:
//! what `rewarm preview` prints and the console's campaigns page shows. The campaign is the
//! one named, else the one the lead's segment picks now.

use chrono::{DateTime, Utc};

use crate::app::Loaded;
use crate::domain::lead::Lead;
use crate::domain::segment::first_match;
use crate::outbound::render::RenderedEmail;
use crate::transport::OutgoingEmail;

/// A step as it would go out.
#[derive(Debug)]
pub enum Preview {
    /// A call step: the lead gets no email, its owner a call task.
    Call {
        campaign: String,
        /// 1-based.
        step: u32,
        of: u32,
        note: Option<String>,
    },
    Email {
        campaign: String,
        /// 1-based.
        step: u32,
        of: u32,
        template: String,
        rendered: RenderedEmail,
        message: OutgoingEmail,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("no campaign `{0}` in {1}")]
    NoSuchCampaign(String, String),
    #[error("no segment matches {0} now; pass --campaign NAME")]
    NoSegment(String),
    #[error("campaign `{0}` has steps 1 to {1}")]
    NoSuchStep(String, u32),
    #[error("{0}")]
    Render(String),
}

/// Step `step` (1 = the first email) of `campaign` (None: the lead's segment's) for `lead`,
/// at `now`.
pub fn preview(
    loaded: &Loaded,
    lead: &Lead,
    campaign: Option<&str>,
    step: u32,
    now: DateTime<Utc>,
) -> Result<Preview, PreviewError> {
    let settings = &loaded.settings;
    let name = match campaign {
        Some(name) => name.to_string(),
        None => first_match(&settings.segments, lead, now, settings.default_tz)
            .ok_or_else(|| PreviewError::NoSegment(lead.email.to_string()))?
            .campaign
            .clone(),
    };
    let campaign = settings.campaigns.get(&name).ok_or_else(|| {
        PreviewError::NoSuchCampaign(name.clone(), settings.file.display().to_string())
    })?;
    let of = campaign.cadence.max_touches;
    if step == 0 || step > of {
        return Err(PreviewError::NoSuchStep(name, of));
    }
    if let Some(call) = campaign.call_for(step - 1) {
        return Ok(Preview::Call {
            campaign: name,
            step,
            of,
            note: call.note.clone(),
        });
    }
    let template = campaign.template_for(step - 1).to_string();
    let (rendered, message) = loaded
        .composer()
        .build(lead, campaign, &template, step - 1, 0, now)
        .map_err(PreviewError::Render)?;
    Ok(Preview::Email {
        campaign: name,
        step,
        of,
        template,
        rendered,
        message,
    })
}
