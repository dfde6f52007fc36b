//! A real Synapse per test. Include with
//! `#[path = "support/synapse.rs"] mod synapse;`.
//!
//! The venv is shared by all tests: `$MATRIX_OS_SYNAPSE_VENV`, else
//! `$CARGO_TARGET_DIR/synapse-venv`, else `<repo>/target/synapse-venv` (installed on first use;
//! ~20-60 s once). Each homeserver gets a fresh temp dir and free ports,
//! and is killed when dropped.
//!
//! ```ignore
//! let pending = TestHomeserver::reserve();
//! let config = pending.appservice_config("http://127.0.0.1:PORT");
//! let registration = Registration::generate(&config);
//! let hs = pending.start(Some(&registration)).await;
//! let (user_id, password, token) = hs.register_user("alice").await;
//! ```
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
};

use matrix_os::{
    config::Config,
    devenv::{
        FederationSpec, HomeserverSpec, Synapse, ensure_synapse_venv, generate_signing_key,
        register_user, write_homeserver_config,
    },
    registration::Registration,
    secret::Secret,
};

/// A port on 127.0.0.1 that is free now and that no other test of this process was given.
///
/// Ports come from below Linux's ephemeral range (32768-60999), so the kernel does not hand
/// them to outgoing connections between this check and the moment a server binds them.
pub fn free_port() -> u16 {
    use std::{
        collections::HashSet,
        sync::{Mutex, OnceLock},
    };
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(HashSet::new()));
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7);
    let mut state = seed | 1;
    for _ in 0..10_000 {
        // xorshift: cheap, good enough to spread ports.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let port = 12_000 + (state % 18_000) as u16;
        let mut taken = given.lock().expect("port set");
        if taken.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.insert(port);
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 between 12000 and 30000");
}

/// The shared venv directory: `$MATRIX_OS_SYNAPSE_VENV`, else `synapse-venv` in the cargo
/// target dir (`$CARGO_TARGET_DIR`, else `<repo>/target`).
pub fn venv_dir() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(venv) = std::env::var_os("MATRIX_OS_SYNAPSE_VENV").filter(|v| !v.is_empty()) {
        return repo.join(venv);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| repo.join("target"), |t| repo.join(t));
    target.join("synapse-venv")
}

/// A homeserver whose ports, directory and name are chosen but which is not started yet
/// (so that a registration can be made for its server name first).
pub struct PendingHomeserver {
    dir: tempfile::TempDir,
    server_name: String,
    client_port: u16,
    federation: Option<FederationSpec>,
    shared_secret: String,
}

impl PendingHomeserver {
    /// `localhost:<port>`.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// `http://127.0.0.1:<client port>`.
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The homeserver's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A matrix-os config for an appservice at `appservice_url` on this homeserver, with its
    /// database, homes and registration in the homeserver's temp dir.
    pub fn appservice_config(&self, appservice_url: &str) -> Config {
        appservice_config(
            self.dir.path(),
            &self.client_url(),
            &self.server_name,
            appservice_url,
        )
    }

    /// Writes the config and keys and starts Synapse with `registration` loaded (if any).
    pub async fn start(self, registration: Option<&Registration>) -> TestHomeserver {
        self.start_with(registration.into_iter().cloned().collect())
            .await
    }

    /// Like [`PendingHomeserver::start`] with any number of registrations.
    pub async fn start_with(self, registrations: Vec<Registration>) -> TestHomeserver {
        let python = ensure_synapse_venv(&venv_dir())
            .await
            .expect("Synapse venv");
        let hs_dir = self.dir.path().join("synapse");
        let mut files = Vec::new();
        for (i, reg) in registrations.iter().enumerate() {
            let path = self.dir.path().join(format!("registration-{i}.yaml"));
            reg.write(&path, true).expect("write registration");
            files.push(path);
        }
        let spec = HomeserverSpec {
            dir: hs_dir,
            server_name: self.server_name.clone(),
            client_port: self.client_port,
            federation: self.federation.clone(),
            registrations: files,
            registration_shared_secret: self.shared_secret.clone(),
            e2ee_appservice: true,
        };
        let config = write_homeserver_config(&spec).expect("write homeserver.yaml");
        // Owners like `@_.x` exist on some homeservers; the tests make them on this one.
        let mut yaml = std::fs::read_to_string(&config).expect("read homeserver.yaml");
        yaml.push_str("\nallow_underscore_prefixed_localpart: true\n");
        std::fs::write(&config, yaml).expect("write homeserver.yaml");
        generate_signing_key(&python, &config)
            .await
            .expect("signing key");
        let synapse = Synapse::start(&python, &config, &spec.client_url())
            .await
            .unwrap_or_else(|e| panic!("starting Synapse for {}: {e}", self.server_name));
        TestHomeserver {
            synapse,
            server_name: self.server_name,
            client_url: spec.client_url(),
            shared_secret: self.shared_secret,
            federation_port: self.federation.map(|f| f.port),
            dir: self.dir,
        }
    }
}

/// A running Synapse owned by one test.
pub struct TestHomeserver {
    // Dropped before `dir`: the process is killed, then the directory removed.
    synapse: Synapse,
    server_name: String,
    client_url: String,
    shared_secret: String,
    federation_port: Option<u16>,
    dir: tempfile::TempDir,
}

impl TestHomeserver {
    /// Chooses free ports and a temp dir; server name `localhost:<client port>`, no federation.
    pub fn reserve() -> PendingHomeserver {
        let client_port = free_port();
        PendingHomeserver {
            dir: temp_dir(),
            server_name: format!("localhost:{client_port}"),
            client_port,
            federation: None,
            shared_secret: Secret::random_token().expose().to_string(),
        }
    }

    /// Two homeservers that federate with each other over TLS on loopback; server names
    /// `localhost:<federation port>`.
    pub fn reserve_pair() -> (PendingHomeserver, PendingHomeserver) {
        let ports = [free_port(), free_port()];
        let names = ports.map(|p| format!("localhost:{p}"));
        let make = |i: usize| PendingHomeserver {
            dir: temp_dir(),
            server_name: names[i].clone(),
            client_port: free_port(),
            federation: Some(FederationSpec {
                port: ports[i],
                peers: vec![names[1 - i].clone()],
            }),
            shared_secret: Secret::random_token().expose().to_string(),
        };
        (make(0), make(1))
    }

    /// A fresh homeserver without federation, with `registration` loaded (if any).
    pub async fn start(registration: Option<&Registration>) -> TestHomeserver {
        Self::reserve().start(registration).await
    }

    /// Client-server API base URL, e.g. `http://127.0.0.1:40123`.
    pub fn client_url(&self) -> &str {
        &self.client_url
    }

    /// The server name in user IDs, e.g. `localhost:40123`.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The `registration_shared_secret` (for [`register_user`] with other options).
    pub fn shared_secret(&self) -> &str {
        &self.shared_secret
    }

    /// The federation port, when federating.
    pub fn federation_port(&self) -> Option<u16> {
        self.federation_port
    }

    /// The test's temp dir (Synapse's data is in `synapse/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The Synapse process.
    pub fn synapse(&mut self) -> &mut Synapse {
        &mut self.synapse
    }

    /// A matrix-os config for an appservice at `appservice_url` on this homeserver.
    pub fn appservice_config(&self, appservice_url: &str) -> Config {
        appservice_config(
            self.dir.path(),
            &self.client_url,
            &self.server_name,
            appservice_url,
        )
    }

    /// Registers `localpart` with a random password: `(user_id, password, access_token)`.
    pub async fn register_user(&self, localpart: &str) -> (String, String, String) {
        let password = Secret::random_token().expose()[..20].to_string();
        let user = register_user(
            &self.client_url,
            &self.shared_secret,
            localpart,
            &password,
            false,
        )
        .await
        .unwrap_or_else(|e| panic!("registering {localpart}: {e}"));
        (
            user.user_id,
            password,
            user.access_token.expose().to_string(),
        )
    }

    /// Registers `localpart` as a server admin; returns its access token.
    pub async fn register_admin(&self, localpart: &str) -> String {
        let password = Secret::random_token().expose()[..20].to_string();
        let user = register_user(
            &self.client_url,
            &self.shared_secret,
            localpart,
            &password,
            true,
        )
        .await
        .unwrap_or_else(|e| panic!("registering admin {localpart}: {e}"));
        user.access_token.expose().to_string()
    }

    /// Stops Synapse, replaces its database with a fresh one (every account, room, device and
    /// key is gone; the config, signing key and appservice registration stay), starts it again.
    pub async fn reset_database(&mut self) {
        self.stop().await;
        let synapse_dir = self.dir.path().join("synapse");
        for name in ["homeserver.db", "homeserver.db-wal", "homeserver.db-shm"] {
            let _ = std::fs::remove_file(synapse_dir.join(name));
        }
        let _ = std::fs::remove_dir_all(synapse_dir.join("media_store"));
        self.start_again().await;
    }

    /// Stops Synapse (SIGTERM), keeping its data.
    pub async fn stop(&mut self) {
        self.synapse.stop().await;
    }

    /// Starts Synapse again on the same data after [`TestHomeserver::stop`].
    pub async fn start_again(&mut self) {
        self.synapse
            .start_again()
            .await
            .unwrap_or_else(|e| panic!("restarting Synapse for {}: {e}", self.server_name));
    }

    /// Stops and starts Synapse.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }
}

/// A temp dir; kept (and printed) when `MATRIX_OS_KEEP_TEST_DIRS` is set.
fn temp_dir() -> tempfile::TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix("matrix-os-hs-")
        .tempdir()
        .expect("temp dir");
    if std::env::var_os("MATRIX_OS_KEEP_TEST_DIRS").is_some() {
        dir.disable_cleanup(true);
        eprintln!("test homeserver dir: {}", dir.path().display());
    }
    dir
}

fn appservice_config(dir: &Path, hs_url: &str, server_name: &str, as_url: &str) -> Config {
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    Config::from_toml_str(&format!(
        "[homeserver]\nurl = {}\nserver_name = {}\n\
         [appservice]\nurl = {}\nregistration = {}\n\
         [database]\nurl = {}\n[home]\ndir = {}\n[encryption]\nstore_dir = {}\n",
        q(hs_url),
        q(server_name),
        q(as_url),
        q(&dir.join("registration-0.yaml").to_string_lossy()),
        q(&format!("sqlite://{}", dir.join("matrix-os.db").display())),
        q(&dir.join("homes").to_string_lossy()),
        q(&dir.join("crypto").to_string_lossy()),
    ))
    .expect("test appservice config")
}
