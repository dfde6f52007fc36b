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
        let access = &self.access;
        for (key, globs) in [
            ("access.dm", &access.dm),
            ("access.invite", &access.invite),
            ("access.rooms", &access.rooms),
            ("access.bots", &access.bots),
        ] {
            for glob in globs {
                crate::policy::check_user_glob(glob)
                    .map_err(|e| ConfigError::invalid(key, e.to_string()))?;
            }
        }
        self.validate_limits()?;
        self.validate_bridges()?;
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
        for (key, value) in [
            ("rooms.turn_deadline_secs", self.rooms.turn_deadline_secs),
            ("rooms.queue_capacity", self.rooms.queue_capacity as u64),
            ("twins.idle_close_secs", self.twins.idle_close_secs),
            (
                "twins.provision_workers",
                self.twins.provision_workers as u64,
            ),
            (
                "encryption.undecryptable_expiry_secs",
                self.encryption.undecryptable_expiry_secs,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        if self.rooms.max_concurrent_turns == 0 {
            return Err(ConfigError::invalid(
                "rooms.max_concurrent_turns",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    fn validate_bridges(&self) -> Result<(), ConfigError> {
        for (name, bridge) in &self.bridges {
            if bridge.bot.server_name().as_str() != self.homeserver.server_name {
                return Err(ConfigError::invalid(
                    "bridges",
                    format!(
                        "bridges.{name}.bot = {}: a bridge's bot is a user of this homeserver ({})",
                        bridge.bot, self.homeserver.server_name
                    ),
                ));
            }
            if bridge.ghosts.is_empty() {
                return Err(ConfigError::invalid(
                    "bridges",
                    format!(
                        "bridges.{name}.ghosts is empty: list the bridge's ghost namespace, e.g.                          [\"@{name}_*:{}\"] (the users of its registration)",
                        self.homeserver.server_name
                    ),
                ));
            }
        }
        crate::bridge::Bridges::new(&self.bridges)
            .map_err(|e| ConfigError::invalid("bridges", e.to_string()))?;
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let limits = &self.limits;
        for (key, count) in [
            ("limits.sender_messages", limits.sender_messages),
            ("limits.server_messages", limits.server_messages),
        ] {
            if count == 0 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        for (key, secs) in [
            ("limits.sender_window_secs", limits.sender_window_secs),
            ("limits.server_window_secs", limits.server_window_secs),
            ("limits.bot_window_secs", limits.bot_window_secs),
        ] {
            if secs == 0 {
                return Err(ConfigError::invalid(
                    key,
                    "must be at least 1 (a window length in seconds)",
                ));
            }
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
    fn access_defaults_and_limits_have_documented_defaults() {
        let config = Config::from_toml_str(MINIMAL).unwrap();
        assert!(config.access.dm.is_empty());
        assert!(config.access.invite.is_empty());
        assert!(config.access.rooms.is_empty());
        assert!(config.access.bots.is_empty());
        assert!(config.access.pairing);
        let limits = &config.limits;
        assert_eq!(limits, &super::super::LimitsConfig::default());
        assert_eq!(
            (limits.sender_messages, limits.sender_window_secs),
            (10, 60)
        );
        assert_eq!(
            (limits.server_messages, limits.server_window_secs),
            (30, 60)
        );
        assert_eq!((limits.bot_turns, limits.bot_window_secs), (4, 600));
        let rate = limits.rate_limits();
        assert_eq!(rate.sender_messages, 10);
        assert_eq!(rate.sender_window, std::time::Duration::from_secs(60));
        assert_eq!(rate.server_messages, 30);
        assert_eq!(rate.server_window, std::time::Duration::from_secs(60));
        assert_eq!(limits.bot_window(), std::time::Duration::from_secs(600));
    }

    #[test]
    fn access_lists_and_limits_are_read() {
        let text = format!(
            "{MINIMAL}\n[access]\ndm = [\"@*:example.org\"]\nbots = [\"@*bot:example.org\"]\n\
             pairing = false\n[limits]\nsender_messages = 3\nbot_turns = 0\n"
        );
        let config = Config::from_toml_str(&text).unwrap();
        assert_eq!(config.access.dm, vec!["@*:example.org"]);
        assert_eq!(config.access.bots, vec!["@*bot:example.org"]);
        assert!(!config.access.pairing);
        assert_eq!(config.limits.sender_messages, 3);
        assert_eq!(config.limits.bot_turns, 0);
        assert_eq!(config.limits.server_messages, 30);
    }

    #[test]
    fn bad_access_glob_names_the_key() {
        for (key, value) in [
            ("dm", "\"bob\""),
            ("invite", "\"@[bob:x\""),
            ("rooms", "\"\""),
            ("bots", "\"bot example\""),
        ] {
            let text = format!("{MINIMAL}\n[access]\n{key} = [{value}]\n");
            let err = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(err.contains(&format!("access.{key}")), "{err}");
        }
    }

    #[test]
    fn bad_limits_name_the_key() {
        for key in [
            "sender_window_secs",
            "server_window_secs",
            "bot_window_secs",
            "sender_messages",
            "server_messages",
        ] {
            let text = format!("{MINIMAL}\n[limits]\n{key} = 0\n");
            let err = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(err.contains(&format!("limits.{key}")), "{err}");
        }
        let text = format!("{MINIMAL}\n[limits]\nsender_mesages = 1\n");
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("sender_mesages"), "{err}");
    }

    #[test]
    fn environment_overrides_access_lists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, MINIMAL).unwrap();
        let env = [
            (
                "MATRIX_OS__ACCESS__DM".to_string(),
                "@bob:example.org,@*:friends.org".to_string(),
            ),
            (
                "MATRIX_OS__ACCESS__PAIRING".to_string(),
                "false".to_string(),
            ),
            ("MATRIX_OS__LIMITS__BOT_TURNS".to_string(), "2".to_string()),
        ];
        let config = Config::load_with_env(&path, env).unwrap();
        assert_eq!(config.access.dm, vec!["@bob:example.org", "@*:friends.org"]);
        assert!(!config.access.pairing);
        assert_eq!(config.limits.bot_turns, 2);
    }

    #[test]
    fn example_config_documents_the_defaults() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
                .unwrap();
        let config = Config::from_toml_str(&text).unwrap();
        assert_eq!(config.limits, super::super::LimitsConfig::default());
        assert_eq!(config.access, super::super::AccessConfig::default());
    }

    #[test]
    fn example_config_is_valid() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
                .unwrap();
        Config::from_toml_str(&text).unwrap();
    }

    #[test]
    fn media_endpoints_parse_as_the_readme_shows_them() {
        let text = format!(
            "{MINIMAL}\n[media]\nmax_bytes = 1000\n\
             [media.transcription]\nbase_url = \"http://127.0.0.1:8080/v1\"\n\
             [media.speech]\nbase_url = \"https://api.openai.com/v1\"\nvoice = \"nova\"\n\
             api_key_env = \"OPENAI_API_KEY\"\n"
        );
        let config = Config::from_toml_str(&text).unwrap();
        assert_eq!(config.media.max_bytes, 1000);
        assert!(config.media.save_owner_files);
        let heard = config.media.transcription.unwrap();
        assert_eq!(heard.base_url.as_str(), "http://127.0.0.1:8080/v1");
        assert_eq!(heard.model, "whisper-1");
        assert!(heard.api_key_env.is_none(), "a local server needs no key");
        let spoken = config.media.speech.unwrap();
        assert_eq!(
            (spoken.voice.as_str(), spoken.format.as_str()),
            ("nova", "opus")
        );
        assert_eq!(spoken.api_key_env.as_deref(), Some("OPENAI_API_KEY"));
        let plain = Config::from_toml_str(MINIMAL).unwrap();
        assert!(plain.media.transcription.is_none() && plain.media.speech.is_none());
        assert!(plain.llm.vision);
    }
}
