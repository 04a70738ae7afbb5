//! Render: a step's Tera templates (subject, plain text, HTML) filled with a lead's data.
//!
//! Each template is a folder under `templates_dir`: `NAME/subject.txt` and `NAME/text.txt`
//! (required) and `NAME/html.html` (optional; autoescaped, because Tera escapes only
//! templates whose names end in `.html`). Other files in the folder tree (layouts,
//! partials such as `_footer.txt`) can be used with `{% include %}` and `{% extends %}`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;

use crate::config::SenderSettings;
use crate::domain::lead::Lead;

/// What a lead will see.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot load templates from {dir}: {message}")]
    Load { dir: PathBuf, message: String },
    #[error(
        "unknown template `{name}`: no folder {dir}/{name}/ with subject.txt and text.txt (known: {known})"
    )]
    Unknown {
        name: String,
        dir: PathBuf,
        known: String,
    },
    #[error("template `{file}` failed: {message}")]
    Render { file: String, message: String },
    #[error("template `{file}` rendered an empty subject")]
    EmptySubject { file: String },
}

/// All templates, parsed once (and again on reload).
pub struct Templates {
    tera: tera::Tera,
    dir: PathBuf,
    /// Names with both subject.txt and text.txt.
    names: BTreeSet<String>,
    /// Names that also have html.html (looked up once per message: a set, not a scan).
    html: BTreeSet<String>,
}

impl Templates {
    pub fn load(dir: &Path) -> Result<Templates, RenderError> {
        let load_err = |message: String| RenderError::Load {
            dir: dir.to_path_buf(),
            message,
        };
        if !dir.is_dir() {
            return Err(load_err("not a folder".into()));
        }
        let glob = format!("{}/**/*", dir.display());
        let tera = tera::Tera::new(&glob).map_err(|e| load_err(error_chain(&e)))?;
        let names = tera
            .get_template_names()
            .filter_map(|n| n.strip_suffix("/subject.txt"))
            .filter(|name| {
                tera.get_template_names()
                    .any(|n| n == format!("{name}/text.txt"))
            })
            .map(str::to_string)
            .collect();
        let html = tera
            .get_template_names()
            .filter_map(|n| n.strip_suffix("/html.html"))
            .map(str::to_string)
            .collect();
        Ok(Templates {
            tera,
            dir: dir.to_path_buf(),
            names,
            html,
        })
    }

    pub fn names(&self) -> &BTreeSet<String> {
        &self.names
    }

    pub fn has(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    pub fn has_html(&self, name: &str) -> bool {
        self.html.contains(name)
    }

    /// Renders template `name` with `context`.
    pub fn render(
        &self,
        name: &str,
        context: &tera::Context,
    ) -> Result<RenderedEmail, RenderError> {
        if !self.has(name) {
            return Err(RenderError::Unknown {
                name: name.to_string(),
                dir: self.dir.clone(),
                known: self.names.iter().cloned().collect::<Vec<_>>().join(", "),
            });
        }
        let one = |file: String| {
            self.tera
                .render(&file, context)
                .map_err(|e| RenderError::Render {
                    message: error_chain(&e),
                    file: format!("{}/{file}", self.dir.display()),
                })
        };
        // A subject is one line: line breaks from lead data or the template are folded away.
        let subject = one(format!("{name}/subject.txt"))?
            .split(['\r', '\n', '\u{2028}', '\u{2029}'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        // A subject fits on a line: lead data cannot make a header longer than RFC 5322 allows.
        let subject = truncate_chars(subject, MAX_SUBJECT_CHARS);
        if subject.is_empty() {
            return Err(RenderError::EmptySubject {
                file: format!("{}/{name}/subject.txt", self.dir.display()),
            });
        }
        let text = one(format!("{name}/text.txt"))?;
        let html = if self.has_html(name) {
            Some(one(format!("{name}/html.html"))?)
        } else {
            None
        };
        Ok(RenderedEmail {
            subject,
            text,
            html,
        })
    }
}

/// Everything a template can use. Missing lead values are empty strings, so templates
/// can write `{% if lead.first_name %}…{% endif %}`; custom fields are `lead.fields.NAME`.
pub fn context(
    lead: &Lead,
    campaign: &str,
    step: u32,
    sender: &SenderSettings,
    default_tz: Tz,
    now: DateTime<Utc>,
) -> tera::Context {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let tz = lead.zone_or(default_tz);
    let full_name = [lead.first_name.as_deref(), lead.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let value = json!({
        "lead": {
            "email": lead.email.as_str(),
            "first_name": s(&lead.first_name),
            "last_name": s(&lead.last_name),
            "full_name": full_name,
            "company": s(&lead.company),
            "title": s(&lead.title),
            "owner_email": s(&lead.owner_email),
            "owner_name": s(&lead.owner_name),
            "lost_reason": s(&lead.lost_reason),
            "lost_at": lead.lost_at.map(|t| t.with_timezone(&tz).format("%Y-%m-%d").to_string()).unwrap_or_default(),
            "months_since_lost": lead.lost_at.map(|t| ((now - t).num_days() / 30).max(0)).unwrap_or(0),
            "timezone": tz.name(),
            "tags": lead.tags,
            "fields": lead.fields,
        },
        "campaign": { "name": campaign, "step": step, "touch": step + 1 },
        "sender": {
            "name": sender.from.name.clone().unwrap_or_default(),
            "email": sender.from.email.to_string(),
        },
    });
    // Invariant: `value` is a JSON object, which Context::from_value always accepts.
    tera::Context::from_value(value).unwrap_or_default()
}

/// Longest subject we send (longer ones are cut, with an ellipsis).
const MAX_SUBJECT_CHARS: usize = 200;

/// `s` cut to at most `max` characters, ending in `…` when cut.
pub fn truncate_chars(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A Tera error with its causes ("…: Variable `lead.fields.size` not found in context").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
