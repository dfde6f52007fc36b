//! A twin's own settings, kept in its home (`system/settings.toml`) so the owner can read and
//! change them by hand too.

use serde::{Deserialize, Serialize};

use crate::{
    budget::BudgetSettings,
    home::{Home, HomeError},
    kernel::approvals::Approvals,
};

/// Where the settings live in the home.
pub const SETTINGS_FILE: &str = "system/settings.toml";

/// Settings the owner changes by command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwinSettings {
    /// Model to use instead of `llm.model` (set with `!ai model <name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// What happens to risky actions in rooms where others speak (`[approvals]`; see
    /// [`crate::kernel::approvals`]).
    #[serde(default, skip_serializing_if = "Approvals::is_default")]
    pub approvals: Approvals,
    /// The owner's token budget (`[budget]`: `daily`, `monthly`, a number or `"off"`), over
    /// the service's `llm.daily_token_budget` / `llm.monthly_token_budget`.
    #[serde(default, skip_serializing_if = "BudgetSettings::is_empty")]
    pub budget: BudgetSettings,
    /// Whether answers are streamed by edits (`stream = false`: one message at the end);
    /// a room's `stream` in `system/rooms/` decides for that room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Whether a voice message from the owner is also answered with a spoken reply
    /// (`voice_replies = true`, `!ai voice on`; needs `[media.speech]` in the service config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_replies: Option<bool>,
}

impl TwinSettings {
    /// Reads the settings; a missing file is the defaults, a broken one an error naming it.
    pub fn load(home: &Home) -> Result<Self, HomeError> {
        match home.read_to_string(SETTINGS_FILE) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| HomeError::Other(format!("{SETTINGS_FILE} is not valid: {e}"))),
            Err(HomeError::NotFound(_)) => Ok(Self::default()),
            Err(err) => Err(err),
        }
    }

    /// Writes the settings (the caller commits).
    pub fn save(&self, home: &Home) -> Result<(), HomeError> {
        let body = toml::to_string(self)
            .map_err(|e| HomeError::Other(format!("cannot write {SETTINGS_FILE}: {e}")))?;
        let text = format!(
            "# This twin's settings; `!ai model <name>` changes the model, `!ai budget` the \
             token budget.\n{body}"
        );
        home.write_atomic(SETTINGS_FILE, text.as_bytes())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_broken_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open_or_create(&dir.path().join("h"), None, "@alice:x").unwrap();
        assert_eq!(TwinSettings::load(&home).unwrap(), TwinSettings::default());
        let settings = TwinSettings {
            model: Some("big-model".into()),
            approvals: Approvals {
                write_files: crate::kernel::approvals::Approval::Allow,
                ..Approvals::default()
            },
            budget: BudgetSettings {
                daily: Some(crate::budget::Limit::Tokens(5000)),
                monthly: Some(crate::budget::Limit::Off),
            },
            stream: Some(false),
            voice_replies: Some(true),
        };
        settings.save(&home).unwrap();
        assert_eq!(TwinSettings::load(&home).unwrap(), settings);
        home.write_atomic(SETTINGS_FILE, b"model = [").unwrap();
        assert!(TwinSettings::load(&home).is_err());
    }
}
