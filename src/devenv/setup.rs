//! `matrix-os dev`: everything a fresh clone needs, in one directory.

use std::path::{Path, PathBuf};

use super::{
    DevError, HomeserverSpec, SYNAPSE_VERSION, Synapse, ensure_synapse_venv, generate_signing_key,
    register_user, write_homeserver_config, write_private,
};
use crate::{config::Config, registration::Registration, secret::Secret};

/// Where `matrix-os dev` keeps its state, relative to the current directory.
pub const DEFAULT_DEV_DIR: &str = ".matrix-os-dev";

/// Choices for [`prepare_dev`].
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// Port of Synapse's client API on 127.0.0.1 (default 8008).
    pub client_port: u16,
    /// Port the appservice listens on, on 127.0.0.1 (default 8009).
    pub appservice_port: u16,
    /// Localpart of the owner account made for the developer (default `owner`).
    pub owner_localpart: String,
    /// Server name of the local homeserver (default `localhost`).
    pub server_name: String,
    /// Venv holding Synapse; `None`: `<dir>/venv`.
    pub venv: Option<PathBuf>,
}

impl Default for DevOptions {
    fn default() -> Self {
        Self {
            client_port: 8008,
            appservice_port: 8009,
            owner_localpart: "owner".into(),
            server_name: "localhost".into(),
            venv: None,
        }
    }
}

/// The `[llm]` section chosen from the environment at each run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmChoice {
    /// `anthropic` or `openai`.
    pub provider: &'static str,
    /// Model name.
    pub model: &'static str,
    /// Environment variable holding the API key.
    pub api_key_env: &'static str,
    /// API base URL (from `OPENAI_BASE_URL`), if any.
    pub base_url: Option<String>,
    /// Whether the key variable is set (otherwise twins answer with a "no model" notice).
    pub has_key: bool,
}

/// Anthropic model used when `ANTHROPIC_API_KEY` is set.
const ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";
/// OpenAI model used otherwise.
const OPENAI_MODEL: &str = "gpt-4o-mini";

impl LlmChoice {
    /// Decides from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Decides from `lookup` (an environment): `ANTHROPIC_API_KEY` set: Anthropic; else OpenAI
    /// (with `OPENAI_BASE_URL` as the base URL when set), with or without `OPENAI_API_KEY`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if set("ANTHROPIC_API_KEY").is_some() {
            return Self {
                provider: "anthropic",
                model: ANTHROPIC_MODEL,
                api_key_env: "ANTHROPIC_API_KEY",
                base_url: None,
                has_key: true,
            };
        }
        Self {
            provider: "openai",
            model: OPENAI_MODEL,
            api_key_env: "OPENAI_API_KEY",
            base_url: set("OPENAI_BASE_URL").map(|u| u.trim().to_string()),
            has_key: set("OPENAI_API_KEY").is_some(),
        }
    }

    /// One line for the developer.
    pub fn describe(&self) -> String {
        if !self.has_key {
            return format!(
                "no API key found, so your twin will answer with a notice. Set \
                 ANTHROPIC_API_KEY, or OPENAI_API_KEY (and OPENAI_BASE_URL for another \
                 OpenAI-compatible server), then run `matrix-os dev` again.{}",
                self.base_url
                    .as_ref()
                    .map(|u| format!(" (base URL now: {u})"))
                    .unwrap_or_default()
            );
        }
        let base = self
            .base_url
            .as_ref()
            .map(|u| format!(" at {u}"))
            .unwrap_or_default();
        format!(
            "{} {}{base}, key from ${} (change the model with MATRIX_OS__LLM__MODEL)",
            self.provider, self.model, self.api_key_env
        )
    }
}

/// A ready local environment: Synapse running, config written, owner account made.
#[derive(Debug)]
pub struct DevSetup {
    /// The dev directory (absolute).
    pub dir: PathBuf,
    /// The matrix-os config to serve with.
    pub config_path: PathBuf,
    /// The appservice registration Synapse loaded.
    pub registration_path: PathBuf,
    /// The developer's account, e.g. `@owner:localhost`.
    pub owner_user_id: String,
    /// Its password (also in `<dir>/owner.txt`).
    pub owner_password: String,
    /// The owner's twin, e.g. `@owner_ai:localhost`.
    pub twin_user_id: String,
    /// Synapse's client API, e.g. `http://127.0.0.1:8008`.
    pub client_url: String,
    /// The model section written into the config.
    pub llm: LlmChoice,
    /// The running homeserver; stop it with [`Synapse::stop`] when done.
    pub synapse: Synapse,
}

/// A TOML basic string (JSON string syntax is valid TOML).
fn q(value: &str) -> String {
    serde_json::Value::String(value.to_string()).to_string()
}

fn utf8(path: &Path) -> Result<&str, DevError> {
    path.to_str().ok_or_else(|| DevError::Corrupt {
        path: path.to_path_buf(),
        message: "the dev directory path must be valid UTF-8".into(),
    })
}

/// The text of the dev `config.toml`.
fn dev_config_toml(dir: &Path, opts: &DevOptions, llm: &LlmChoice) -> Result<String, DevError> {
    let mut llm_section = format!(
        "provider = {}\nmodel = {}\napi_key_env = {}\n",
        q(llm.provider),
        q(llm.model),
        q(llm.api_key_env)
    );
    if let Some(base) = &llm.base_url {
        llm_section.push_str(&format!("base_url = {}\n", q(base)));
    }
    Ok(format!(
        r#"# Written by `matrix-os dev` on EVERY run: edits here are lost. Override any key with an
# environment variable MATRIX_OS__<SECTION>__<KEY> instead (e.g. MATRIX_OS__LLM__MODEL).
# The [llm] section follows ANTHROPIC_API_KEY / OPENAI_API_KEY / OPENAI_BASE_URL at each run.

[homeserver]
url = {hs_url}
server_name = {server_name}

[appservice]
id = "matrix-os"
listen = {listen}
url = {as_url}
registration = {registration}

[database]
url = {db}

[home]
dir = {homes}

[encryption]
store_dir = {crypto}

[llm]
{llm_section}"#,
        hs_url = q(&format!("http://127.0.0.1:{}", opts.client_port)),
        server_name = q(&opts.server_name),
        listen = q(&format!("127.0.0.1:{}", opts.appservice_port)),
        as_url = q(&format!("http://127.0.0.1:{}", opts.appservice_port)),
        registration = q(utf8(&dir.join("registration.yaml"))?),
        db = q(&format!("sqlite://{}", utf8(&dir.join("matrix-os.db"))?)),
        homes = q(utf8(&dir.join("homes"))?),
        crypto = q(utf8(&dir.join("crypto"))?),
    ))
}

/// Keeps the tokens of an existing registration and brings the rest in line with `config`.
fn ensure_registration(config: &Config) -> Result<PathBuf, DevError> {
    let path = config.appservice.registration.clone();
    let mut wanted = Registration::generate(config);
    if path.exists() {
        let existing = Registration::read(&path)?;
        wanted.as_token = existing.as_token.clone();
        wanted.hs_token = existing.hs_token.clone();
        if wanted != existing {
            wanted.write(&path, true)?;
        }
    } else {
        wanted.write(&path, false)?;
    }
    Ok(path)
}

/// Reads the secret in `path`, or makes and stores a new one.
fn persistent_secret(path: &Path) -> Result<String, DevError> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_string()),
        Ok(_) => Err(DevError::Corrupt {
            path: path.to_path_buf(),
            message: "is empty; delete it and the synapse directory next to it to start over"
                .into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = Secret::random_token().expose().to_string();
            write_private(path, &format!("{secret}\n"))?;
            Ok(secret)
        }
        Err(e) => Err(DevError::io(path)(e)),
    }
}

/// Owner credentials stored in `owner.txt`.
struct OwnerFile {
    user_id: String,
    password: String,
}

impl OwnerFile {
    fn read(path: &Path) -> Result<Option<Self>, DevError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DevError::io(path)(e)),
        };
        let field = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        match (field("user_id"), field("password")) {
            (Some(user_id), Some(password)) => Ok(Some(Self { user_id, password })),
            _ => Err(DevError::Corrupt {
                path: path.to_path_buf(),
                message: "expected lines `user_id=...` and `password=...`".into(),
            }),
        }
    }

    fn write(&self, path: &Path) -> Result<(), DevError> {
        write_private(
            path,
            &format!(
                "# The dev owner account, made by `matrix-os dev`.\nuser_id={}\npassword={}\n",
                self.user_id, self.password
            ),
        )
    }
}

/// Sets up (first run) or reuses (later runs) the dev environment in `dir` and starts Synapse.
///
/// First run: creates `dir`, the Synapse venv (`<dir>/venv` unless [`DevOptions::venv`]), the
/// registration, `synapse/homeserver.yaml` and the signing key, then starts Synapse and
/// registers the owner account with a random password (kept in `<dir>/owner.txt`, mode 0600).
/// Every run rewrites `config.toml` (so that a model key set later is picked up) and
/// `homeserver.yaml`, and keeps the registration tokens, the database and the owner.
pub async fn prepare_dev(dir: &Path, opts: DevOptions) -> Result<DevSetup, DevError> {
    std::fs::create_dir_all(dir).map_err(DevError::io(dir))?;
    let dir = std::path::absolute(dir).map_err(DevError::io(dir))?;
    let venv = match &opts.venv {
        Some(venv) => std::path::absolute(venv).map_err(DevError::io(venv))?,
        None => dir.join("venv"),
    };
    let python = ensure_synapse_venv(&venv).await?;

    let llm = LlmChoice::from_env();
    let config_path = dir.join("config.toml");
    let text = dev_config_toml(&dir, &opts, &llm)?;
    let tmp = config_path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(DevError::io(&tmp))?;
    std::fs::rename(&tmp, &config_path).map_err(DevError::io(&config_path))?;
    let config = Config::load(&config_path).map_err(|source| DevError::Config {
        path: config_path.clone(),
        source,
    })?;
    let registration_path = ensure_registration(&config)?;

    let synapse_dir = dir.join("synapse");
    std::fs::create_dir_all(&synapse_dir).map_err(DevError::io(&synapse_dir))?;
    let shared_secret = persistent_secret(&synapse_dir.join("shared_secret"))?;
    let spec = HomeserverSpec {
        dir: synapse_dir,
        server_name: config.homeserver.server_name.clone(),
        client_port: opts.client_port,
        federation: None,
        registrations: vec![registration_path.clone()],
        registration_shared_secret: shared_secret.clone(),
        e2ee_appservice: true,
    };
    let hs_config = write_homeserver_config(&spec)?;
    generate_signing_key(&python, &hs_config).await?;
    let client_url = spec.client_url();
    eprintln!("matrix-os: starting Synapse {SYNAPSE_VERSION} at {client_url}");
    let mut synapse = Synapse::start(&python, &hs_config, &client_url).await?;

    match ensure_owner(&dir, &opts, &config, &client_url, &shared_secret).await {
        Ok(owner) => Ok(DevSetup {
            twin_user_id: format!(
                "@{}{}:{}",
                opts.owner_localpart,
                config.appservice.puppet_suffix,
                config.homeserver.server_name
            ),
            dir,
            config_path,
            registration_path,
            owner_user_id: owner.user_id,
            owner_password: owner.password,
            client_url,
            llm,
            synapse,
        }),
        Err(e) => {
            synapse.stop().await;
            Err(e)
        }
    }
}

/// Reuses the owner in `owner.txt` or registers a new one.
async fn ensure_owner(
    dir: &Path,
    opts: &DevOptions,
    config: &Config,
    client_url: &str,
    shared_secret: &str,
) -> Result<OwnerFile, DevError> {
    let path = dir.join("owner.txt");
    let user_id = format!(
        "@{}:{}",
        opts.owner_localpart, config.homeserver.server_name
    );
    let stored = OwnerFile::read(&path)?;
    if let Some(stored) = &stored
        && stored.user_id != user_id
    {
        // Another owner was asked for: keep the old credentials aside.
        let old_localpart = stored
            .user_id
            .trim_start_matches('@')
            .split(':')
            .next()
            .unwrap_or("old");
        let aside = dir.join(format!("owner.{old_localpart}.txt"));
        std::fs::rename(&path, &aside).map_err(DevError::io(&aside))?;
    }
    match stored.filter(|s| s.user_id == user_id) {
        Some(owner) => {
            // Normally "taken"; success means the homeserver's data was reset: made again.
            match register_user(
                client_url,
                shared_secret,
                &opts.owner_localpart,
                &owner.password,
                false,
            )
            .await
            {
                Ok(_) => eprintln!(
                    "matrix-os: re-created {user_id} with the password in {}",
                    path.display()
                ),
                Err(DevError::UserTaken { .. }) => {}
                Err(e) => return Err(e),
            }
            Ok(owner)
        }
        None => {
            let password = Secret::random_token().expose()[..24].to_string();
            match register_user(
                client_url,
                shared_secret,
                &opts.owner_localpart,
                &password,
                false,
            )
            .await
            {
                Ok(registered) => {
                    let owner = OwnerFile {
                        user_id: registered.user_id,
                        password,
                    };
                    owner.write(&path)?;
                    Ok(owner)
                }
                Err(DevError::UserTaken { .. }) => Err(DevError::Corrupt {
                    path,
                    message: format!(
                        "is missing but {user_id} already exists on the dev homeserver, so its \
                         password is unknown. Write the file yourself (lines `user_id={user_id}` \
                         and `password=...`), choose another owner name, or delete {} to start \
                         the homeserver from scratch",
                        dir.join("synapse").display()
                    ),
                }),
                Err(e) => Err(e),
            }
        }
    }
}

/// How to connect to the dev homeserver with a Matrix client and talk to the twin.
pub fn connect_instructions(setup: &DevSetup) -> String {
    format!(
        r#"Local Matrix homeserver (Synapse {version}) is running.

  Homeserver URL:  {url}
  User:            {user}
  Password:        {password}
  Your AI twin:    {twin}

Log in with any Matrix client, using {url} as the homeserver:
  - Element Desktop (https://element.io/download): on the sign-in screen click "Edit" next to
    the homeserver and enter {url}.
  - Element Web: https://app.element.io is served over https and browsers may block it from
    talking to an http:// homeserver; use Element Desktop or run Element Web locally instead.
  - Any other Matrix client works too.
Then start a direct message with {twin} and say hello.

Model: {llm}
Config: {config}  (credentials also in {owner_file})
Synapse log: {log}
"#,
        version = SYNAPSE_VERSION,
        url = setup.client_url,
        user = setup.owner_user_id,
        password = setup.owner_password,
        twin = setup.twin_user_id,
        llm = setup.llm.describe(),
        config = setup.config_path.display(),
        owner_file = setup.dir.join("owner.txt").display(),
        log = setup.synapse.log_path().display(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn llm_follows_the_environment() {
        let anthropic = LlmChoice::from_lookup(env(&[
            ("ANTHROPIC_API_KEY", "sk-ant"),
            ("OPENAI_API_KEY", "sk"),
        ]));
        assert_eq!(anthropic.provider, "anthropic");
        assert_eq!(anthropic.api_key_env, "ANTHROPIC_API_KEY");
        assert!(anthropic.has_key);

        let openai = LlmChoice::from_lookup(env(&[
            ("OPENAI_API_KEY", "sk"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"),
        ]));
        assert_eq!(openai.provider, "openai");
        assert_eq!(
            openai.base_url.as_deref(),
            Some("http://127.0.0.1:11434/v1")
        );
        assert!(openai.has_key);

        let none = LlmChoice::from_lookup(env(&[("ANTHROPIC_API_KEY", " ")]));
        assert_eq!(none.provider, "openai");
        assert_eq!(none.api_key_env, "OPENAI_API_KEY");
        assert!(!none.has_key);
        assert!(none.describe().contains("no API key"));
    }

    #[test]
    fn dev_config_loads() {
        let dir = tempfile::tempdir().unwrap();
        for llm in [
            LlmChoice::from_lookup(env(&[("ANTHROPIC_API_KEY", "k")])),
            LlmChoice::from_lookup(env(&[("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")])),
        ] {
            let text = dev_config_toml(dir.path(), &DevOptions::default(), &llm).unwrap();
            let path = dir.path().join("config.toml");
            std::fs::write(&path, &text).unwrap();
            let config = Config::load_with_env(&path, Vec::new()).unwrap();
            assert_eq!(config.homeserver.server_name, "localhost");
            assert_eq!(config.homeserver.url.as_str(), "http://127.0.0.1:8008/");
            assert_eq!(config.appservice.listen.to_string(), "127.0.0.1:8009");
            assert_eq!(
                config.appservice.registration,
                dir.path().join("registration.yaml")
            );
            assert_eq!(
                config.database.url,
                format!("sqlite://{}", dir.path().join("matrix-os.db").display())
            );
            assert_eq!(config.home.dir, dir.path().join("homes"));
            assert_eq!(config.llm.api_key_env, llm.api_key_env);
            assert_eq!(
                config
                    .llm
                    .base_url
                    .as_ref()
                    .map(|u| u.as_str().trim_end_matches('/')),
                llm.base_url.as_deref().map(|u| u.trim_end_matches('/'))
            );
        }
    }

    #[test]
    fn registration_keeps_tokens_and_follows_config() {
        let dir = tempfile::tempdir().unwrap();
        let llm = LlmChoice::from_lookup(env(&[]));
        let load = |opts: &DevOptions| {
            let path = dir.path().join("config.toml");
            std::fs::write(&path, dev_config_toml(dir.path(), opts, &llm).unwrap()).unwrap();
            Config::load_with_env(&path, Vec::new()).unwrap()
        };
        let first =
            Registration::read(&ensure_registration(&load(&DevOptions::default())).unwrap())
                .unwrap();
        let opts = DevOptions {
            appservice_port: 9999,
            ..DevOptions::default()
        };
        let second = Registration::read(&ensure_registration(&load(&opts)).unwrap()).unwrap();
        assert_eq!(first.as_token, second.as_token);
        assert_eq!(first.hs_token, second.hs_token);
        assert_eq!(second.url, "http://127.0.0.1:9999");
    }

    #[test]
    fn owner_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("owner.txt");
        assert!(OwnerFile::read(&path).unwrap().is_none());
        OwnerFile {
            user_id: "@owner:localhost".into(),
            password: "pw=with=equals".into(),
        }
        .write(&path)
        .unwrap();
        let read = OwnerFile::read(&path).unwrap().unwrap();
        assert_eq!(
            (read.user_id.as_str(), read.password.as_str()),
            ("@owner:localhost", "pw=with=equals")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
