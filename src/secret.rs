//! Secrets (SMTP passwords, API keys, signing keys) are read from the environment or from
//! systemd credentials, never from files in the repository, and never printed.

use std::fmt;

/// A secret value: Debug and Display print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: call only where it is handed to the peer that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads the secret named `name`: first the environment variable `name`, then the systemd
    /// credential file `$CREDENTIALS_DIRECTORY/name` (from `LoadCredential=` in the unit).
    pub fn from_env_or_credential(name: &str) -> Result<Self, SecretError> {
        if let Ok(value) = std::env::var(name) {
            return Ok(Self(value));
        }
        if let Ok(dir) = std::env::var("CREDENTIALS_DIRECTORY") {
            let path = std::path::Path::new(&dir).join(name);
            if let Ok(value) = std::fs::read_to_string(&path) {
                return Ok(Self(value.trim_end_matches(['\n', '\r']).to_string()));
            }
        }
        Err(SecretError::Missing(name.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "secret `{0}` is not set: export it as an environment variable or provide it as a systemd credential (LoadCredential={0}:…)"
    )]
    Missing(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn a_missing_secret_names_the_variable() {
        let err = Secret::from_env_or_credential("REWARM_TEST_SURELY_UNSET_VAR").unwrap_err();
        assert!(err.to_string().contains("REWARM_TEST_SURELY_UNSET_VAR"));
    }
}
