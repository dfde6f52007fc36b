//! A hand-written `homeserver.yaml` for a local Synapse (no `--generate-config`).

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use super::{DevError, tail_lines, write_private};

/// What the local homeserver looks like.
#[derive(Debug, Clone)]
pub struct HomeserverSpec {
    /// Directory holding the config, database, media, keys and logs.
    pub dir: PathBuf,
    /// The server name in user IDs, e.g. `localhost` or `localhost:8448`.
    pub server_name: String,
    /// Port of the plain-HTTP client API on 127.0.0.1.
    pub client_port: u16,
    /// Federation with other local homeservers; `None` disables federation.
    pub federation: Option<FederationSpec>,
    /// Appservice registration files to load.
    pub registrations: Vec<PathBuf>,
    /// Secret for the shared-secret admin registration API.
    pub registration_shared_secret: String,
    /// Turn on the experimental features encrypted appservices need (MSC2409, MSC3202).
    pub e2ee_appservice: bool,
}

/// Federation between homeservers on loopback.
#[derive(Debug, Clone)]
pub struct FederationSpec {
    /// Port of the TLS federation listener on 127.0.0.1 (normally part of the server name).
    pub port: u16,
    /// Server names of the other homeservers this one may federate with.
    pub peers: Vec<String>,
}

impl HomeserverSpec {
    /// `homeserver.yaml` in [`HomeserverSpec::dir`].
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("homeserver.yaml")
    }

    /// `http://127.0.0.1:<client_port>`.
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn q(value: &str) -> String {
    serde_json::Value::String(value.to_string()).to_string()
}

fn qp(path: &Path) -> String {
    q(&path.to_string_lossy())
}

fn q_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(q).collect();
    format!("[{}]", items.join(", "))
}

/// Rate limits generous enough that tests and a developer never hit them.
const RATE_LIMITS: &str = r#"
rc_message: {per_second: 1000, burst_count: 10000}
rc_registration: {per_second: 1000, burst_count: 10000}
rc_registration_token_validity: {per_second: 1000, burst_count: 10000}
rc_login:
  address: {per_second: 1000, burst_count: 10000}
  account: {per_second: 1000, burst_count: 10000}
  failed_attempts: {per_second: 1000, burst_count: 10000}
rc_admin_redaction: {per_second: 1000, burst_count: 10000}
rc_joins:
  local: {per_second: 1000, burst_count: 10000}
  remote: {per_second: 1000, burst_count: 10000}
rc_joins_per_room: {per_second: 1000, burst_count: 10000}
rc_3pid_validation: {per_second: 1000, burst_count: 10000}
rc_invites:
  per_room: {per_second: 1000, burst_count: 10000}
  per_user: {per_second: 1000, burst_count: 10000}
  per_issuer: {per_second: 1000, burst_count: 10000}
rc_third_party_invite: {per_second: 1000, burst_count: 10000}
rc_media_create: {per_second: 1000, burst_count: 10000}
rc_presence:
  per_user: {per_second: 1000, burst_count: 10000}
rc_delayed_event_mgmt: {per_second: 1000, burst_count: 10000}
rc_room_creation: {per_second: 1000, burst_count: 10000}
rc_reports: {per_second: 1000, burst_count: 10000}
rc_key_requests: {per_second: 1000, burst_count: 10000}
rc_federation:
  window_size: 1000
  sleep_limit: 10000
  sleep_delay: 0
  reject_limit: 10000
  concurrent: 100
federation_rr_transactions_per_room_per_second: 10000
"#;

/// The Python logging config: INFO and up to `homeserver.log`, WARNING and up to the console.
fn log_config(log_file: &Path) -> String {
    format!(
        r#"# Written by matrix-os (devenv).
version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: {}
    encoding: utf8
  console:
    class: logging.StreamHandler
    formatter: precise
    level: WARNING
loggers:
  synapse.storage.SQL:
    level: INFO
root:
  level: INFO
  handlers: [file, console]
disable_existing_loggers: false
"#,
        qp(log_file)
    )
}

/// The text of `homeserver.yaml` for `spec` (paths as given: pass an absolute `dir`).
pub(crate) fn homeserver_yaml(spec: &HomeserverSpec) -> String {
    let dir = &spec.dir;
    let mut y = String::new();
    // `write!` into a String cannot fail.
    let _ = write!(
        y,
        r#"# Written by matrix-os (devenv) on every start: a local homeserver for development and
# tests, listening on 127.0.0.1 only. Not for production.
server_name: {server_name}
public_baseurl: {public_baseurl}
pid_file: {pid_file}
report_stats: false
listeners:
  - port: {client_port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
"#,
        server_name = q(&spec.server_name),
        public_baseurl = q(&format!("{}/", spec.client_url())),
        pid_file = qp(&dir.join("homeserver.pid")),
        client_port = spec.client_port,
    );
    if let Some(fed) = &spec.federation {
        let _ = write!(
            y,
            r#"  - port: {port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: true
    x_forwarded: false
    resources:
      - names: [federation]
        compress: false
tls_certificate_path: {cert}
tls_private_key_path: {key}
federation_verify_certificates: false
ip_range_whitelist: ["127.0.0.0/8", "::1/128"]
federation_domain_whitelist: {whitelist}
federation:
  client_timeout: 10s
  max_short_retry_delay: 1s
  max_long_retry_delay: 2s
  destination_min_retry_interval: 2s
  destination_max_retry_interval: 10s
"#,
            port = fed.port,
            cert = qp(&dir.join("tls.crt")),
            key = qp(&dir.join("tls.key")),
            whitelist = q_list(
                std::iter::once(spec.server_name.as_str())
                    .chain(fed.peers.iter().map(String::as_str))
            ),
        );
    } else {
        y.push_str("# No federation: no federation listener, and no remote server is contacted.\n");
        y.push_str("federation_domain_whitelist: []\n");
    }
    let _ = write!(
        y,
        r#"database:
  name: sqlite3
  args:
    database: {db}
log_config: {log_config}
media_store_path: {media}
signing_key_path: {signing_key}
trusted_key_servers: []
suppress_key_server_warning: true
enable_registration: true
enable_registration_without_verification: true
registration_shared_secret: {secret}
url_preview_enabled: false
presence:
  enabled: true
app_service_config_files: {registrations}
"#,
        db = qp(&dir.join("homeserver.db")),
        log_config = qp(&dir.join("log.config")),
        media = qp(&dir.join("media_store")),
        signing_key = qp(&dir.join("signing.key")),
        secret = q(&spec.registration_shared_secret),
        registrations = q_list(
            spec.registrations
                .iter()
                .map(|p| p.to_str().unwrap_or_default())
        ),
    );
    if spec.e2ee_appservice {
        y.push_str(
            "experimental_features:\n  msc2409_to_device_messages_enabled: true\n  \
             msc3202_transaction_extensions: true\n",
        );
    }
    y.push_str(RATE_LIMITS);
    y
}

/// Writes `homeserver.yaml` and `log.config` into `spec.dir` (created if missing), plus a
/// self-signed TLS certificate for the federation listener when federating and none exists
/// yet. Returns the path of `homeserver.yaml`. The file is rewritten on every call; the
/// database, media and keys are kept. `spec.dir` is made absolute first.
///
/// Run [`generate_signing_key`] afterwards (once) before starting Synapse.
pub fn write_homeserver_config(spec: &HomeserverSpec) -> Result<PathBuf, DevError> {
    std::fs::create_dir_all(&spec.dir).map_err(DevError::io(&spec.dir))?;
    let dir = std::path::absolute(&spec.dir).map_err(DevError::io(&spec.dir))?;
    let mut spec = spec.clone();
    spec.registrations = spec
        .registrations
        .iter()
        .map(|p| std::path::absolute(p).map_err(DevError::io(p)))
        .collect::<Result<_, _>>()?;
    if let Some(bad) = spec.registrations.iter().find(|p| p.to_str().is_none()) {
        return Err(DevError::Corrupt {
            path: bad.clone(),
            message: "registration paths must be valid UTF-8".into(),
        });
    }
    spec.dir = dir.clone();
    if spec.federation.is_some() {
        ensure_tls_certificate(&dir)?;
    }
    let log_config_path = dir.join("log.config");
    std::fs::write(&log_config_path, log_config(&dir.join("homeserver.log")))
        .map_err(DevError::io(&log_config_path))?;
    let path = spec.config_path();
    write_private(&path, &homeserver_yaml(&spec))?;
    Ok(path)
}

/// Makes `tls.crt`/`tls.key` in `dir` (self-signed for `localhost` and 127.0.0.1) if missing.
fn ensure_tls_certificate(dir: &Path) -> Result<(), DevError> {
    let (cert_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
    if cert_path.exists() && key_path.exists() {
        return Ok(());
    }
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(|e| DevError::Certificate(e.to_string()))?;
    write_private(&key_path, &certified.signing_key.serialize_pem())?;
    std::fs::write(&cert_path, certified.cert.pem()).map_err(DevError::io(&cert_path))?;
    Ok(())
}

/// Generates the homeserver's signing key if it is missing
/// (`python -m synapse.app.homeserver --generate-keys -c <config>`).
pub async fn generate_signing_key(python: &Path, config: &Path) -> Result<(), DevError> {
    let dir = config.parent().unwrap_or(Path::new("."));
    if dir.join("signing.key").exists() {
        return Ok(());
    }
    let output = tokio::process::Command::new(python)
        .args(["-m", "synapse.app.homeserver", "--generate-keys", "-c"])
        .arg(config)
        .current_dir(dir)
        .output()
        .await
        .map_err(|e| DevError::Command {
            what: format!(
                "{} -m synapse.app.homeserver --generate-keys",
                python.display()
            ),
            message: e.to_string(),
        })?;
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        return Err(DevError::Command {
            what: "generating the Synapse signing key".into(),
            message: tail_lines(&text, 20),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(dir: &Path) -> HomeserverSpec {
        HomeserverSpec {
            dir: dir.to_path_buf(),
            server_name: "localhost:8448".into(),
            client_port: 8008,
            federation: Some(FederationSpec {
                port: 8448,
                peers: vec!["localhost:8449".into()],
            }),
            registrations: vec![dir.join("registration.yaml")],
            registration_shared_secret: "s3cret \"quoted\"".into(),
            e2ee_appservice: true,
        }
    }

    #[test]
    fn yaml_parses_and_has_the_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_homeserver_config(&spec(dir.path())).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let yaml: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(yaml["server_name"], "localhost:8448");
        assert_eq!(yaml["registration_shared_secret"], "s3cret \"quoted\"");
        assert_eq!(yaml["listeners"][0]["bind_addresses"][0], "127.0.0.1");
        assert_eq!(yaml["listeners"][1]["tls"], true);
        assert_eq!(yaml["federation_verify_certificates"], false);
        assert_eq!(
            yaml["federation_domain_whitelist"],
            serde_json::json!(["localhost:8448", "localhost:8449"])
        );
        assert_eq!(
            yaml["experimental_features"]["msc3202_transaction_extensions"],
            true
        );
        assert_eq!(yaml["rc_joins"]["remote"]["per_second"], 1000);
        assert_eq!(yaml["trusted_key_servers"], serde_json::json!([]));
        assert!(dir.path().join("tls.crt").exists());
        assert!(dir.path().join("log.config").exists());
        let cert = std::fs::read_to_string(dir.path().join("tls.crt")).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        // Rewriting keeps the certificate.
        write_homeserver_config(&spec(dir.path())).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("tls.crt")).unwrap(),
            cert
        );
    }

    #[test]
    fn without_federation_nothing_is_contacted() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = spec(dir.path());
        spec.federation = None;
        spec.e2ee_appservice = false;
        let yaml: serde_json::Value = serde_saphyr::from_str(&homeserver_yaml(&spec)).unwrap();
        assert_eq!(yaml["listeners"].as_array().unwrap().len(), 1);
        assert_eq!(yaml["federation_domain_whitelist"], serde_json::json!([]));
        assert!(yaml.get("experimental_features").is_none());
    }
}
