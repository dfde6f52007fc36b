//! Checks that go beyond types, each naming the key at fault.

use std::path::Path;

use super::{Config, LlmProvider};

/// A configuration problem, phrased for the admin who has to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is missing.
    #[error("config file {0} does not exist (copy config.example.toml and edit it)")]
    MissingFile(String),
    /// The file or a value could not be parsed.
    #[error("config: {0}")]
    Parse(String),
    /// A key has a value that cannot work.
    #[error("config key `{key}`: {message}")]
    Invalid {
        /// Dotted key, e.g. `llm.timeout_secs`.
        key: &'static str,
        /// What is wrong and what would be right.
        message: String,
    },
}

impl ConfigError {
    pub(super) fn missing_file(path: &Path) -> Self {
        Self::MissingFile(path.display().to_string())
    }

    pub(super) fn from_config(err: config::ConfigError) -> Self {
        Self::Parse(err.to_string())
    }

    fn invalid(key: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            key,
            message: message.into(),
        }
    }
}

fn is_localpart_char(c: char) -> bool {
    matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '=' | '-' | '/' | '+')
}

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let hs = &self.homeserver;
        if !matches!(hs.url.scheme(), "http" | "https") {
            return Err(ConfigError::invalid(
                "homeserver.url",
                "must be an http:// or https:// URL",
            ));
        }
        if hs.server_name.trim().is_empty() || hs.server_name.contains(['@', '/', ' ']) {
            return Err(ConfigError::invalid(
                "homeserver.server_name",
                "must be the server name used in user IDs, e.g. example.org",
            ));
        }
        let asv = &self.appservice;
        if asv.id.trim().is_empty() {
            return Err(ConfigError::invalid("appservice.id", "must not be empty"));
        }
        if !matches!(asv.url.scheme(), "http" | "https") {
            return Err(ConfigError::invalid(
                "appservice.url",
                "must be an http:// or https:// URL",
            ));
        }
        if asv.sender_localpart.is_empty() || !asv.sender_localpart.chars().all(is_localpart_char) {
            return Err(ConfigError::invalid(
                "appservice.sender_localpart",
                "must be a non-empty lowercase localpart (a-z 0-9 . _ = - / +)",
            ));
        }
        if asv.puppet_suffix.is_empty() || !asv.puppet_suffix.chars().all(is_localpart_char) {
            return Err(ConfigError::invalid(
                "appservice.puppet_suffix",
                "must be non-empty and use only a-z 0-9 . _ = - / +",
            ));
        }
        if asv.max_body_bytes < 1024 {
            return Err(ConfigError::invalid(
                "appservice.max_body_bytes",
                "must be at least 1024",
            ));
        }
        let db = &self.database.url;
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return Err(ConfigError::invalid(
                "database.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        for glob in &self.access.owners {
            globset::Glob::new(glob).map_err(|e| {
                ConfigError::invalid("access.owners", format!("bad glob {glob:?}: {e}"))
            })?;
            if !glob.starts_with('@') && !glob.starts_with('*') {
                return Err(ConfigError::invalid(
                    "access.owners",
                    format!("{glob:?} should look like a user ID, e.g. \"@*:example.org\""),
                ));
            }
        }
        let llm = &self.llm;
        if llm.provider != LlmProvider::None && llm.model.trim().is_empty() {
            return Err(ConfigError::invalid("llm.model", "must name a model"));
        }
        if llm.timeout_secs == 0 || llm.timeout_secs > 3600 {
            return Err(ConfigError::invalid(
                "llm.timeout_secs",
                "must be between 1 and 3600",
            ));
        }
        if llm.max_tool_steps == 0 {
            return Err(ConfigError::invalid(
                "llm.max_tool_steps",
                "must be at least 1",
            ));
        }
        if llm.api_key_env.trim().is_empty() {
            return Err(ConfigError::invalid(
                "llm.api_key_env",
                "must name an environment variable (the key itself never goes in the config)",
            ));
        }
        if self.rooms.max_concurrent_turns == 0 {
            return Err(ConfigError::invalid(
                "rooms.max_concurrent_turns",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::Config;

    const MINIMAL: &str = r#"
[homeserver]
url = "http://127.0.0.1:8008"
server_name = "example.org"

[appservice]
url = "http://127.0.0.1:8009"
"#;

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let config = Config::from_toml_str(MINIMAL).unwrap();
        assert_eq!(config.appservice.puppet_suffix, "_ai");
        assert_eq!(config.database.url, "sqlite://matrix-os.db");
        assert_eq!(config.owner_globs(), vec!["@*:example.org".to_string()]);
    }

    #[test]
    fn bad_value_names_the_key() {
        let text = format!("{MINIMAL}\n[llm]\ntimeout_secs = 0\n");
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("llm.timeout_secs"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let text = format!("{MINIMAL}\n[llm]\ntimeout_secs = \"soon\"\n");
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("timeout_secs"), "{err}");
    }

    #[test]
    fn unknown_key_is_refused() {
        let text = format!("{MINIMAL}\n[llm]\nmodle = \"x\"\n");
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("modle"), "{err}");
    }

    #[test]
    fn environment_overrides_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, MINIMAL).unwrap();
        let env = [
            ("MATRIX_OS__LLM__MODEL".to_string(), "claude-x".to_string()),
            ("MATRIX_OS__LLM__TIMEOUT_SECS".to_string(), "7".to_string()),
            (
                "MATRIX_OS__ACCESS__OWNERS".to_string(),
                "@alice:example.org,@bob:*".to_string(),
            ),
            ("UNRELATED".to_string(), "1".to_string()),
        ];
        let config = Config::load_with_env(&path, env).unwrap();
        assert_eq!(config.llm.model, "claude-x");
        assert_eq!(config.llm.timeout_secs, 7);
        assert_eq!(config.access.owners, vec!["@alice:example.org", "@bob:*"]);
    }

    #[test]
    fn example_config_is_valid() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
                .unwrap();
        Config::from_toml_str(&text).unwrap();
    }
}
