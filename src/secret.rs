//! Secrets (tokens, API keys, passphrases) that never show up in logs.

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// A secret string. `Debug` and `Display` print `[redacted]`; use [`Secret::expose`] where the
/// value is really needed (an HTTP header, a file the admin asked for).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// A fresh random token of 64 URL-safe characters from the OS CSPRNG.
    pub fn random_token() -> Self {
        use rand::{Rng, distributions::Alphanumeric};
        let token: String = rand::rngs::OsRng
            .sample_iter(&Alphanumeric)
            .take(64)
            .map(char::from)
            .collect();
        Self(token)
    }

    /// The secret value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares with `other` in time independent of where they differ.
    pub fn constant_time_eq(&self, other: &str) -> bool {
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }
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
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: Secret,
        }
        let shown = format!(
            "{:?}",
            Holder {
                token: secret.clone()
            }
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        insta::assert_snapshot!(shown, @"Holder { token: [redacted] }");
    }

    #[test]
    fn constant_time_eq_compares_values() {
        let secret = Secret::new("abc");
        assert!(secret.constant_time_eq("abc"));
        assert!(!secret.constant_time_eq("abd"));
        assert!(!secret.constant_time_eq("ab"));
    }

    #[test]
    fn random_tokens_differ() {
        let a = Secret::random_token();
        let b = Secret::random_token();
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a.expose(), b.expose());
    }
}
