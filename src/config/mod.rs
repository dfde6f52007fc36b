//! Service configuration: a TOML file, overridable by `MATRIX_OS__SECTION__KEY` variables.
//!
//! [`Config::load`] reads and validates; every error names the key at fault so that an admin
//! knows what to fix. Relative paths in the file (and in overrides) are read against the
//! folder of the config file, not the working directory.

mod media;
mod paths;
mod validate;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use url::Url;

pub use self::{
    media::{MediaConfig, SpeechConfig, TranscriptionConfig},
    validate::ConfigError,
};

/// Prefix of environment variables that override config keys (`MATRIX_OS__LLM__MODEL`).
pub const ENV_PREFIX: &str = "MATRIX_OS";

/// The whole service configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The homeserver this service belongs to.
    pub homeserver: HomeserverConfig,
    /// How the service appears to the homeserver.
    pub appservice: AppserviceConfig,
    /// Where state is stored.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// Where owners' file homes live.
    #[serde(default)]
    pub home: HomeConfig,
    /// Who may have a twin.
    #[serde(default)]
    pub access: AccessConfig,
    /// The language model behind every twin.
    #[serde(default)]
    pub llm: LlmConfig,
    /// Room sessions.
    #[serde(default)]
    pub rooms: RoomsConfig,
    /// End-to-end encryption.
    #[serde(default)]
    pub encryption: EncryptionConfig,
    /// Rate limits and the bot-to-bot bound.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Twins' resources: when idle ones are closed, how provisioning runs.
    #[serde(default)]
    pub twins: TwinsConfig,
    /// The mautrix bridges whose portals the twins recognise (`[bridges.telegram]`: the bot and
    /// its ghost namespace).
    #[serde(default)]
    pub bridges: std::collections::BTreeMap<String, crate::bridge::BridgeConfig>,
    /// Photos, files and voice messages.
    #[serde(default)]
    pub media: MediaConfig,
}

/// `[encryption]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Folder of the twins' crypto stores (one sub-folder per twin and device).
    #[serde(default = "default_crypto_dir")]
    pub store_dir: PathBuf,
    /// Passphrase that encrypts the crypto stores. Empty: a random one is generated once and
    /// kept in `<store_dir>/passphrase` (mode 0600). Better set through
    /// `MATRIX_OS__ENCRYPTION__PASSPHRASE` than in the file.
    #[serde(default)]
    pub passphrase: crate::secret::Secret,
    /// Seconds an event whose room key never arrived is kept; then it is given up on and the
    /// owner of the twin that could not read it is told.
    #[serde(default = "default_undecryptable_expiry_secs")]
    pub undecryptable_expiry_secs: u64,
    /// What an encrypted message from the owner gets when the owner's cross-signing identity
    /// has not signed the sending device: `warn` (the default: answered, and logged) or
    /// `refuse` (not answered; the owner is told once). Other people's messages are refused
    /// when their account has a cross-signing identity that did not sign the sending device
    /// (cross-signed or legacy, as matrix-sdk calls it).
    #[serde(default)]
    pub owner_devices: OwnerDevices,
}

/// `encryption.owner_devices`: how strict owner powers are about the sending device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerDevices {
    /// Answer, and log that the device is not cross-signed.
    #[default]
    Warn,
    /// Owner powers only from devices the owner's identity signed.
    Refuse,
}

fn default_crypto_dir() -> PathBuf {
    PathBuf::from("crypto")
}

impl Default for EncryptionConfig {
    fn default() -> Self {
        Self {
            store_dir: default_crypto_dir(),
            passphrase: crate::secret::Secret::default(),
            undecryptable_expiry_secs: default_undecryptable_expiry_secs(),
            owner_devices: OwnerDevices::default(),
        }
    }
}

/// `[homeserver]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeserverConfig {
    /// Client-server API base URL, e.g. `http://127.0.0.1:8008`.
    pub url: Url,
    /// The server name in user IDs, e.g. `example.org`.
    pub server_name: String,
}

/// `[appservice]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppserviceConfig {
    /// The registration's `id`.
    #[serde(default = "default_appservice_id")]
    pub id: String,
    /// Address the appservice HTTP API binds to.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// URL at which the homeserver reaches this service.
    pub url: Url,
    /// Path of the registration file (the one source of the tokens).
    #[serde(default = "default_registration")]
    pub registration: PathBuf,
    /// Localpart of the service's own bot user.
    #[serde(default = "default_sender_localpart")]
    pub sender_localpart: String,
    /// Suffix that turns an owner's localpart into the twin's: `alice` -> `alice_ai`.
    #[serde(default = "default_puppet_suffix")]
    pub puppet_suffix: String,
    /// Largest transaction body accepted, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` or `postgres://user@host:port/db`.
    #[serde(default = "default_database_url")]
    pub url: String,
}

/// `[home]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeConfig {
    /// Folder holding one home per owner: `<dir>/<owner localpart>/`.
    #[serde(default = "default_home_dir")]
    pub dir: PathBuf,
    /// Template copied into a new home. Empty: the template built into the binary.
    #[serde(default)]
    pub template: Option<PathBuf>,
}

/// `[access]`: who may have a twin, and the defaults every owner's `system/access.toml` adds to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// MXID globs of users who may have a twin. Empty: every user of `homeserver.server_name`.
    #[serde(default)]
    pub owners: Vec<String>,
    /// MXID globs who may DM every twin, added to each home's `dm` list.
    #[serde(default)]
    pub dm: Vec<String>,
    /// MXID globs who may invite every twin into rooms, added to each home's `invite` list.
    #[serde(default)]
    pub invite: Vec<String>,
    /// MXID globs who may address every twin in any room, added to each home's `rooms` list.
    #[serde(default)]
    pub rooms: Vec<String>,
    /// MXID globs of known bots, added to each home's `bots` list.
    #[serde(default)]
    pub bots: Vec<String>,
    /// Whether people on no list may ask an owner for access, unless the home says otherwise.
    #[serde(default = "default_pairing")]
    pub pairing: bool,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            owners: Vec::new(),
            dm: Vec::new(),
            invite: Vec::new(),
            rooms: Vec::new(),
            bots: Vec::new(),
            pairing: default_pairing(),
        }
    }
}

fn default_pairing() -> bool {
    true
}

/// `[limits]`: how much one sender, one remote server and bots may make the twins do.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Messages one sender gets answered per `sender_window_secs`.
    pub sender_messages: u32,
    /// Window of the per-sender limit, in seconds.
    pub sender_window_secs: u64,
    /// Messages all senders of one remote server together get answered per
    /// `server_window_secs`.
    pub server_messages: u32,
    /// Window of the per-server limit, in seconds.
    pub server_window_secs: u64,
    /// Turns triggered by bots per room and `bot_window_secs` (0: twins never answer bots).
    pub bot_turns: u32,
    /// Window of the bot-turn bound, in seconds.
    pub bot_window_secs: u64,
    /// Pairing requests (strangers asking to talk) one twin tells its owner about per
    /// `owner_notice_window_secs`; more are kept, and the owner is told once that more wait.
    pub owner_notices: u32,
    /// Window of the owner-notice bound, in seconds.
    pub owner_notice_window_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            sender_messages: 10,
            sender_window_secs: 60,
            server_messages: 30,
            server_window_secs: 60,
            bot_turns: 4,
            bot_window_secs: 600,
            owner_notices: 10,
            owner_notice_window_secs: 3600,
        }
    }
}

impl LimitsConfig {
    /// The per-sender and per-server limits for a [`crate::policy::RateLimiter`].
    pub fn rate_limits(&self) -> crate::policy::RateLimits {
        crate::policy::RateLimits {
            sender_messages: self.sender_messages,
            sender_window: std::time::Duration::from_secs(self.sender_window_secs),
            server_messages: self.server_messages,
            server_window: std::time::Duration::from_secs(self.server_window_secs),
        }
    }

    /// The window of the bot-turn bound, for [`crate::policy::BotTurns::new`].
    pub fn bot_window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.bot_window_secs)
    }
}

/// Which wire protocol the model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LlmProvider {
    /// OpenAI-compatible Chat Completions (OpenAI, Ollama, vLLM, llama.cpp, ...).
    Openai,
    /// Anthropic Messages API.
    Anthropic,
    /// No model: twins answer with a notice saying how to configure one.
    None,
}

/// `[llm]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// Wire protocol.
    #[serde(default = "default_llm_provider")]
    pub provider: LlmProvider,
    /// API base URL; empty: the provider's public endpoint.
    #[serde(default)]
    pub base_url: Option<Url>,
    /// Model name.
    #[serde(default = "default_llm_model")]
    pub model: String,
    /// Name of the environment variable that holds the API key (never the key itself).
    #[serde(default = "default_api_key_env")]
    pub api_key_env: String,
    /// Timeout of one model request, in seconds.
    #[serde(default = "default_llm_timeout")]
    pub timeout_secs: u64,
    /// Retries after a 429/5xx/network failure before the room is told.
    #[serde(default = "default_llm_retries")]
    pub max_retries: u32,
    /// Most model calls in one turn (each tool round is one).
    #[serde(default = "default_max_tool_steps")]
    pub max_tool_steps: u32,
    /// `max_tokens` sent with each request.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Most characters of a turn's first request (system prompt, history, the new message);
    /// the oldest history is left out to fit, so that nobody can make a turn expensive.
    #[serde(default = "default_max_prompt_chars")]
    pub max_prompt_chars: usize,
    /// Tokens (input and output) each twin's model may use per UTC day; none: no limit.
    /// An owner's `[budget]` in `system/settings.toml` overrides it.
    #[serde(default)]
    pub daily_token_budget: Option<u64>,
    /// Tokens each twin's model may use per UTC month; none: no limit.
    #[serde(default)]
    pub monthly_token_budget: Option<u64>,
    /// Whether answers are asked for with the providers' streaming APIs and written into the
    /// room by edits as they come (owners and rooms may turn it off for themselves).
    #[serde(default = "default_stream")]
    pub stream: bool,
    /// Whether the model reads images: photos go to it as image input (OpenAI `image_url`,
    /// Anthropic `image` blocks). false: they are only described by name.
    #[serde(default = "default_vision")]
    pub vision: bool,
}

fn default_stream() -> bool {
    true
}

fn default_vision() -> bool {
    true
}

impl LlmConfig {
    /// The token budget of a twin whose owner set none.
    pub fn default_budget(&self) -> crate::budget::TokenBudget {
        crate::budget::TokenBudget {
            daily: self.daily_token_budget,
            monthly: self.monthly_token_budget,
        }
    }
}

/// `[rooms]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomsConfig {
    /// Turns that may run at once across all rooms.
    #[serde(default = "default_max_concurrent_turns")]
    pub max_concurrent_turns: usize,
    /// Most earlier messages of a session given to the model.
    #[serde(default = "default_history_messages")]
    pub history_messages: usize,
    /// Most recent room messages shown to the model in a group turn (who said what).
    #[serde(default = "default_context_messages")]
    pub context_messages: usize,
    /// Longest a turn may take (every model call and tool of it), in seconds.
    #[serde(default = "default_turn_deadline_secs")]
    pub turn_deadline_secs: u64,
    /// Events one room's queue holds; more wait in the inbox (on disk) until it has space.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// When an owner's conversation in a room (its history since the last summary and the
    /// new message, in estimated tokens) would pass this, older turns are summarised by the
    /// model and the summary stands in for them; 0: never.
    #[serde(default = "default_compact_at_tokens")]
    pub compact_at_tokens: usize,
    /// Most recent messages kept as they are when a conversation is summarised.
    #[serde(default = "default_compact_keep_messages")]
    pub compact_keep_messages: usize,
}

fn default_compact_at_tokens() -> usize {
    20_000
}

fn default_compact_keep_messages() -> usize {
    12
}

/// `[twins]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwinsConfig {
    /// Seconds a twin may be idle before its Olm machine, crypto store connections and cached
    /// home are closed (they are opened again when it has work).
    #[serde(default = "default_idle_close_secs")]
    pub idle_close_secs: u64,
    /// Twins whose device and keys are set up at once, in the background, after the
    /// homeserver asked for them.
    #[serde(default = "default_provision_workers")]
    pub provision_workers: usize,
}

impl Default for TwinsConfig {
    fn default() -> Self {
        Self {
            idle_close_secs: default_idle_close_secs(),
            provision_workers: default_provision_workers(),
        }
    }
}

fn default_idle_close_secs() -> u64 {
    600
}
fn default_provision_workers() -> usize {
    4
}
fn default_turn_deadline_secs() -> u64 {
    300
}
fn default_queue_capacity() -> usize {
    32
}
fn default_undecryptable_expiry_secs() -> u64 {
    24 * 3600
}

fn default_appservice_id() -> String {
    "matrix-os".into()
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8009))
}
fn default_registration() -> PathBuf {
    PathBuf::from("registration.yaml")
}
fn default_sender_localpart() -> String {
    "matrix-os".into()
}
fn default_puppet_suffix() -> String {
    "_ai".into()
}
fn default_max_body_bytes() -> usize {
    16 * 1024 * 1024
}
fn default_database_url() -> String {
    "sqlite://matrix-os.db".into()
}
fn default_home_dir() -> PathBuf {
    PathBuf::from("homes")
}
fn default_llm_provider() -> LlmProvider {
    LlmProvider::Openai
}
fn default_llm_model() -> String {
    "gpt-4o-mini".into()
}
fn default_api_key_env() -> String {
    "OPENAI_API_KEY".into()
}
fn default_llm_timeout() -> u64 {
    120
}
fn default_llm_retries() -> u32 {
    3
}
fn default_max_tool_steps() -> u32 {
    12
}
fn default_max_tokens() -> u32 {
    4096
}
fn default_max_prompt_chars() -> usize {
    120_000
}
fn default_max_concurrent_turns() -> usize {
    8
}
fn default_context_messages() -> usize {
    20
}
fn default_history_messages() -> usize {
    60
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: default_database_url(),
        }
    }
}
impl Default for HomeConfig {
    fn default() -> Self {
        Self {
            dir: default_home_dir(),
            template: None,
        }
    }
}
impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            provider: default_llm_provider(),
            base_url: None,
            model: default_llm_model(),
            api_key_env: default_api_key_env(),
            timeout_secs: default_llm_timeout(),
            max_retries: default_llm_retries(),
            max_tool_steps: default_max_tool_steps(),
            max_tokens: default_max_tokens(),
            max_prompt_chars: default_max_prompt_chars(),
            daily_token_budget: None,
            monthly_token_budget: None,
            stream: default_stream(),
            vision: true,
        }
    }
}
impl Default for RoomsConfig {
    fn default() -> Self {
        Self {
            max_concurrent_turns: default_max_concurrent_turns(),
            history_messages: default_history_messages(),
            context_messages: default_context_messages(),
            turn_deadline_secs: default_turn_deadline_secs(),
            queue_capacity: default_queue_capacity(),
            compact_at_tokens: default_compact_at_tokens(),
            compact_keep_messages: default_compact_keep_messages(),
        }
    }
}

impl Config {
    /// Reads `path`, applies `MATRIX_OS__*` overrides from the process environment and validates.
    ///
    /// Relative paths (`appservice.registration`, `home.dir`, `home.template`,
    /// `encryption.store_dir`, a SQLite file in `database.url`), whether from the file, a
    /// default or an override, are made absolute against the folder of `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// Like [`Config::load`] with an explicit environment (for tests).
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        if !path.exists() {
            return Err(ConfigError::missing_file(path));
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        let raw = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("access.owners")
                    .with_list_parse_key("access.dm")
                    .with_list_parse_key("access.invite")
                    .with_list_parse_key("access.rooms")
                    .with_list_parse_key("access.bots")
                    .source(Some(env)),
            )
            .build()
            .map_err(ConfigError::from_config)?;
        let mut config: Config = raw.try_deserialize().map_err(ConfigError::from_config)?;
        config.validate()?;
        let base = paths::base_folder(path).map_err(|e| {
            ConfigError::Parse(format!("cannot find the folder of {}: {e}", path.display()))
        })?;
        config.resolve_paths(&base);
        Ok(config)
    }

    /// Parses TOML text (no environment overrides) and validates. Paths stay as written
    /// (there is no file whose folder they would be relative to).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let raw = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .map_err(ConfigError::from_config)?;
        let config: Config = raw.try_deserialize().map_err(ConfigError::from_config)?;
        config.validate()?;
        Ok(config)
    }

    /// The owner globs in force: `access.owners`, or every local user when empty.
    pub fn owner_globs(&self) -> Vec<String> {
        if self.access.owners.is_empty() {
            vec![format!("@*:{}", self.homeserver.server_name)]
        } else {
            self.access.owners.clone()
        }
    }
}
