//! The appservice registration file: written by `generate-registration`, read by the homeserver
//! and by `serve` (it is the one place the tokens live).
//!
//! ruma's `Registration` type drops the MSC3202/MSC4190 flags, so the file has its own type here.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{config::Config, secret::Secret};

/// An appservice registration, as in the spec plus the unstable flags encryption needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Registration {
    /// Unique id of the appservice on the homeserver.
    pub id: String,
    /// URL at which the homeserver reaches the service.
    pub url: String,
    /// Token the service uses towards the homeserver.
    pub as_token: Secret,
    /// Token the homeserver uses towards the service.
    pub hs_token: Secret,
    /// Localpart of the service's own user.
    pub sender_localpart: String,
    /// Whether the homeserver rate-limits the service's users.
    #[serde(default)]
    pub rate_limited: bool,
    /// User, alias and room namespaces.
    pub namespaces: Namespaces,
    /// Whether ephemeral events (typing, receipts, and with MSC2409 to-device) are pushed.
    #[serde(default)]
    pub receive_ephemeral: bool,
    /// MSC3202: device lists and one-time-key counts in transactions, and `device_id`
    /// masquerading, which every twin's own device needs.
    #[serde(rename = "org.matrix.msc3202", default)]
    pub msc3202: bool,
    /// MSC4190: the appservice creates its users' devices itself (no login per twin).
    #[serde(rename = "io.element.msc4190", default)]
    pub msc4190: bool,
}

/// The namespaces of a registration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Namespaces {
    /// User ID regexes.
    #[serde(default)]
    pub users: Vec<Namespace>,
    /// Room alias regexes.
    #[serde(default)]
    pub aliases: Vec<Namespace>,
    /// Room ID regexes.
    #[serde(default)]
    pub rooms: Vec<Namespace>,
}

/// One namespace entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Namespace {
    /// Whether only this service may use matching IDs.
    pub exclusive: bool,
    /// Regex, anchored by the homeserver at the start only (so it ends with `$`).
    pub regex: String,
}

/// Reading or writing a registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// The file is already there and `--force` was not given.
    #[error(
        "{0} already exists; pass --force to overwrite it (the homeserver must then be given the new file)"
    )]
    Exists(String),
    /// File I/O.
    #[error("registration file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The YAML does not describe a registration.
    #[error("registration file {path} is not a valid registration: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// The registration does not match the config.
    #[error("registration file {path} does not match the config: {message}")]
    Mismatch {
        /// The file.
        path: String,
        /// What differs.
        message: String,
    },
    /// A token anyone could guess: a placeholder, too short, or both tokens the same.
    #[error(
        "registration file {path}: {key} {problem}; anyone who reaches the service could \
         forge transactions with it. Run `matrix-os generate-registration -c <config> --force` \
         for fresh tokens and give the new file to the homeserver"
    )]
    WeakToken {
        /// The file.
        path: String,
        /// `as_token` or `hs_token`.
        key: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// Shortest token `serve` accepts (generated ones have 64 characters).
pub const MIN_TOKEN_CHARS: usize = 32;

/// Text that marks a token as a placeholder someone forgot to replace (long enough that a
/// random generated token never contains one by chance).
const PLACEHOLDER_WORDS: &[&str] = &[
    "replace_me",
    "replaceme",
    "change_me",
    "changeme",
    "placeholder",
    "example",
    "generate-registration",
    "<",
];

/// Why a token is too weak to serve with, if it is.
fn weakness(token: &str) -> Option<&'static str> {
    let lower = token.to_ascii_lowercase();
    if PLACEHOLDER_WORDS.iter().any(|word| lower.contains(word)) {
        return Some("is a placeholder");
    }
    if token.chars().count() < MIN_TOKEN_CHARS {
        return Some("is shorter than 32 characters");
    }
    let first = token.chars().next();
    if token.chars().all(|c| Some(c) == first) {
        return Some("repeats one character");
    }
    None
}

/// Escapes regex metacharacters in a literal (server names contain dots and colons).
fn regex_escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Registration {
    /// A new registration for `config` with fresh random tokens.
    pub fn generate(config: &Config) -> Self {
        let server = regex_escape(&config.homeserver.server_name);
        let suffix = regex_escape(&config.appservice.puppet_suffix);
        Self {
            id: config.appservice.id.clone(),
            url: config
                .appservice
                .url
                .to_string()
                .trim_end_matches('/')
                .to_string(),
            as_token: Secret::random_token(),
            hs_token: Secret::random_token(),
            sender_localpart: config.appservice.sender_localpart.clone(),
            rate_limited: false,
            namespaces: Namespaces {
                users: vec![Namespace {
                    exclusive: true,
                    regex: format!("@.*{suffix}:{server}$"),
                }],
                aliases: vec![],
                rooms: vec![],
            },
            receive_ephemeral: true,
            msc3202: true,
            msc4190: true,
        }
    }

    /// Serializes to YAML.
    pub fn to_yaml(&self) -> String {
        // Serializing plain strings and bools cannot fail.
        serde_saphyr::to_string(self).unwrap_or_default()
    }

    /// Writes to `path`, refusing to replace an existing file unless `force`.
    pub fn write(&self, path: &Path, force: bool) -> Result<(), RegistrationError> {
        let io = |source| RegistrationError::Io {
            path: path.display().to_string(),
            source,
        };
        if path.exists() && !force {
            return Err(RegistrationError::Exists(path.display().to_string()));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        crate::private_file::write_private(path, self.to_yaml().as_bytes()).map_err(io)
    }

    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self, RegistrationError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistrationError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let reg: Self = serde_saphyr::from_str(&text).map_err(|e| RegistrationError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        if reg.as_token.is_empty() || reg.hs_token.is_empty() {
            return Err(RegistrationError::Parse {
                path: path.display().to_string(),
                message: "as_token and hs_token must not be empty".into(),
            });
        }
        Ok(reg)
    }

    /// Refuses tokens anyone could guess (see [`RegistrationError::WeakToken`]).
    pub fn check_tokens(&self, path: &Path) -> Result<(), RegistrationError> {
        let weak = |key, problem| RegistrationError::WeakToken {
            path: path.display().to_string(),
            key,
            problem,
        };
        for (key, token) in [("as_token", &self.as_token), ("hs_token", &self.hs_token)] {
            if let Some(problem) = weakness(token.expose()) {
                return Err(weak(key, problem));
            }
        }
        if self.as_token.expose() == self.hs_token.expose() {
            return Err(weak("hs_token", "is the same as as_token"));
        }
        Ok(())
    }

    /// Reads `path`, checks that it belongs to `config` (same id and sender) and that its
    /// tokens are not guessable.
    pub fn read_for(config: &Config) -> Result<Self, RegistrationError> {
        let path = &config.appservice.registration;
        let reg = Self::read(path)?;
        reg.check_tokens(path)?;
        let mismatch = |message: String| RegistrationError::Mismatch {
            path: path.display().to_string(),
            message,
        };
        if reg.id != config.appservice.id {
            return Err(mismatch(format!(
                "id is {:?} but appservice.id is {:?}",
                reg.id, config.appservice.id
            )));
        }
        if reg.sender_localpart != config.appservice.sender_localpart {
            return Err(mismatch(format!(
                "sender_localpart is {:?} but appservice.sender_localpart is {:?}",
                reg.sender_localpart, config.appservice.sender_localpart
            )));
        }
        Ok(reg)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_toml_str(
            r#"
[homeserver]
url = "http://127.0.0.1:8008"
server_name = "localhost:8448"
[appservice]
url = "http://127.0.0.1:8009"
"#,
        )
        .unwrap()
    }

    #[test]
    fn generated_registration_round_trips_and_redacts() {
        let reg = Registration::generate(&config());
        assert_eq!(reg.namespaces.users[0].regex, r"@.*_ai:localhost:8448$");
        assert!(reg.namespaces.users[0].exclusive);
        assert!(!format!("{reg:?}").contains(reg.as_token.expose()));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registration.yaml");
        reg.write(&path, false).unwrap();
        assert_eq!(Registration::read(&path).unwrap(), reg);
        assert!(matches!(
            reg.write(&path, false),
            Err(RegistrationError::Exists(_))
        ));
        let fresh = Registration::generate(&config());
        fresh.write(&path, true).unwrap();
        assert_ne!(Registration::read(&path).unwrap().as_token, reg.as_token);
    }

    #[test]
    fn registration_yaml_shape() {
        let mut reg = Registration::generate(&config());
        reg.as_token = Secret::new("AS");
        reg.hs_token = Secret::new("HS");
        insta::assert_snapshot!(reg.to_yaml());
    }

    #[test]
    fn example_registration_parses() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/registration.yaml");
        let reg = Registration::read(Path::new(path)).unwrap();
        assert_eq!(reg.namespaces.users[0].regex, r"@.*_ai:example\.org$");
    }

    #[test]
    fn placeholder_short_and_equal_tokens_are_refused() {
        let path = Path::new("registration.yaml");
        let example = Registration::read(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/registration.yaml"
        )))
        .unwrap();
        let err = example.check_tokens(path).unwrap_err().to_string();
        assert!(err.contains("as_token is a placeholder"), "{err}");
        let mut reg = Registration::generate(&config());
        reg.check_tokens(path).unwrap();
        reg.hs_token = Secret::new("short");
        assert!(
            reg.check_tokens(path)
                .unwrap_err()
                .to_string()
                .contains("hs_token is shorter")
        );
        reg.hs_token = Secret::new("a".repeat(40));
        assert!(
            reg.check_tokens(path)
                .unwrap_err()
                .to_string()
                .contains("repeats")
        );
        reg.hs_token = reg.as_token.clone();
        assert!(
            reg.check_tokens(path)
                .unwrap_err()
                .to_string()
                .contains("same as as_token")
        );
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.yaml");
        std::fs::write(&path, "id: [unclosed").unwrap();
        let err = Registration::read(&path).unwrap_err().to_string();
        assert!(err.contains("not a valid registration"), "{err}");
    }
}
