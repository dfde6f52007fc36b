//! The `matrix-os` binary as an admin runs it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

#[path = "support/synapse.rs"]
mod synapse;

use std::{path::Path, process::Command};

use matrix_os::registration::Registration;
use synapse::{TestHomeserver, free_port};

fn matrix_os(args: &[&str], dir: &Path) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_matrix-os"))
        .args(args)
        .current_dir(dir)
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env("RUST_LOG", "error")
        .output()
        .expect("run matrix-os");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

const CONFIG: &str = r#"
[homeserver]
url = "http://127.0.0.1:9"
server_name = "example.org"
[appservice]
url = "http://127.0.0.1:8009"
"#;

#[test]
fn generate_registration_writes_fresh_tokens_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
    let (code, out) = matrix_os(&["generate-registration", "-c", "config.toml"], dir.path());
    assert_eq!(code, 0, "{out}");
    let path = dir.path().join("registration.yaml");
    let first = Registration::read(&path).unwrap();
    assert_eq!(first.namespaces.users[0].regex, r"@.*_ai:example\.org$");
    assert!(!first.rate_limited);
    assert!(
        !out.contains(first.as_token.expose()),
        "tokens are never printed"
    );

    let (code, out) = matrix_os(&["generate-registration", "-c", "config.toml"], dir.path());
    assert_ne!(code, 0);
    assert!(out.contains("--force"), "{out}");
    assert_eq!(
        Registration::read(&path).unwrap(),
        first,
        "the file is untouched"
    );

    let (code, _) = matrix_os(
        &[
            "generate-registration",
            "-c",
            "config.toml",
            "--force",
            "-o",
            "other.yaml",
        ],
        dir.path(),
    );
    assert_eq!(code, 0);
    let (code, _) = matrix_os(
        &["generate-registration", "-c", "config.toml", "--force"],
        dir.path(),
    );
    assert_eq!(code, 0);
    assert_ne!(Registration::read(&path).unwrap().as_token, first.as_token);
}

#[test]
fn a_bad_config_exits_2_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!("{CONFIG}\n[llm]\ntimeout_secs = 0\n"),
    )
    .unwrap();
    for command in ["serve", "doctor", "generate-registration"] {
        let (code, out) = matrix_os(&[command, "-c", "config.toml"], dir.path());
        assert_eq!(code, 2, "{command}: {out}");
        assert!(out.contains("llm.timeout_secs"), "{command}: {out}");
    }
    let (code, out) = matrix_os(&["serve", "-c", "missing.toml"], dir.path());
    assert_eq!(code, 2);
    assert!(out.contains("missing.toml"), "{out}");
}

#[test]
fn serve_without_a_registration_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
    let (code, out) = matrix_os(&["serve", "-c", "config.toml"], dir.path());
    assert_eq!(code, 2);
    assert!(out.contains("generate-registration"), "{out}");
}

#[test]
fn serve_refuses_the_example_registration_and_weak_tokens() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/registration.yaml");
    std::fs::copy(example, dir.path().join("registration.yaml")).unwrap();
    let (code, out) = matrix_os(&["serve", "-c", "config.toml"], dir.path());
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("as_token is a placeholder"), "{out}");
    assert!(out.contains("generate-registration"), "{out}");
    let text = std::fs::read_to_string(example)
        .unwrap()
        .replace(
            "as_token: REPLACE_ME_run_matrix-os_generate-registration",
            "as_token: short",
        )
        .replace(
            "hs_token: REPLACE_ME_run_matrix-os_generate-registration",
            "hs_token: Yq8w3N5zR2kT7vB1mX4cL9pD6sF0hJ2gA5eU8iO3",
        );
    std::fs::write(dir.path().join("registration.yaml"), text).unwrap();
    let (code, out) = matrix_os(&["serve", "-c", "config.toml"], dir.path());
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("as_token is shorter than 32"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_a_real_homeserver_and_names_what_to_fix() {
    let pending = TestHomeserver::reserve();
    let port = free_port();
    let mut config = pending.appservice_config(&format!("http://127.0.0.1:{port}"));
    config.appservice.listen = ([127, 0, 0, 1], port).into();
    let registration = Registration::generate(&config);
    registration
        .write(&config.appservice.registration, true)
        .unwrap();
    let hs = pending.start(Some(&registration)).await;
    let config_text = format!(
        "[homeserver]\nurl = \"{}\"\nserver_name = \"{}\"\n[appservice]\nurl = \"http://127.0.0.1:{port}\"\nlisten = \"127.0.0.1:{port}\"\nregistration = \"{}\"\n[database]\nurl = \"sqlite://{}\"\n[llm]\nprovider = \"none\"\n",
        hs.client_url(),
        hs.server_name(),
        config.appservice.registration.display(),
        hs.dir().join("doctor.db").display(),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), &config_text).unwrap();
    let run = |dir: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || matrix_os(&["doctor", "-c", "config.toml"], &dir))
    };
    let (code, out) = run(dir.path().to_path_buf()).await.unwrap();
    assert_eq!(code, 0, "{out}");
    for check in [
        "✓ config",
        "✓ registration",
        "✓ encryption",
        "✓ database",
        "✓ homeserver",
        "✓ as_token",
        "✓ ping",
        "✓ llm",
    ] {
        assert!(out.contains(check), "missing {check:?} in:\n{out}");
    }

    // A registration the homeserver never loaded: doctor says where to add it.
    let stranger = Registration::generate(&config);
    let other = dir.path().join("not-loaded.yaml");
    stranger.write(&other, true).unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        config_text.replace(
            &config.appservice.registration.display().to_string(),
            &other.display().to_string(),
        ),
    )
    .unwrap();
    let (code, out) = run(dir.path().to_path_buf()).await.unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("✗ as_token") && out.contains("app_service_config_files"),
        "{out}"
    );
    drop(hs);
}

/// A config folder and a separate working directory, for `serve` runs that must keep their
/// files beside the config.
struct Install {
    root: tempfile::TempDir,
}

impl Install {
    fn new() -> Self {
        let install = Self {
            root: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(install.etc()).unwrap();
        std::fs::create_dir_all(install.cwd()).unwrap();
        install
    }

    /// The config's folder.
    fn etc(&self) -> std::path::PathBuf {
        self.root.path().join("etc")
    }

    /// The working directory `matrix-os` runs in.
    fn cwd(&self) -> std::path::PathBuf {
        self.root.path().join("elsewhere")
    }

    fn config_path(&self) -> std::path::PathBuf {
        self.etc().join("config.toml")
    }

    /// Writes the config (relative paths only, a dead homeserver port, a free listen port)
    /// with `extra` appended.
    fn write_config(&self, extra: &str) {
        let port = free_port();
        std::fs::write(
            self.config_path(),
            format!(
                "[homeserver]\nurl = \"http://127.0.0.1:9\"\nserver_name = \"example.org\"\n\
                 [appservice]\nurl = \"http://127.0.0.1:{port}\"\nlisten = \"127.0.0.1:{port}\"\n\
                 [llm]\nprovider = \"none\"\n{extra}"
            ),
        )
        .unwrap();
    }

    fn generate_registration(&self) {
        let config = self.config_path();
        let (code, out) = matrix_os(
            &["generate-registration", "-c", config.to_str().unwrap()],
            &self.cwd(),
        );
        assert_eq!(code, 0, "{out}");
        assert!(self.etc().join("registration.yaml").is_file(), "{out}");
    }

    /// Starts `serve -c <absolute config path>` in the working directory, output to a file.
    fn spawn_serve(&self) -> (std::process::Child, std::path::PathBuf) {
        let log = self.root.path().join(format!("serve-{}.log", free_port()));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_matrix-os"))
            .args(["serve", "-c", self.config_path().to_str().unwrap()])
            .current_dir(self.cwd())
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .env("RUST_LOG", "error")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("run matrix-os serve");
        (child, log)
    }

    /// Runs `serve` until every one of `paths` exists (it keeps retrying the dead homeserver
    /// meanwhile), then stops it.
    fn serve_until(&self, paths: &[std::path::PathBuf]) {
        let (mut child, log) = self.spawn_serve();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !paths.iter().all(|p| p.exists()) {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "serve exited ({status}) before creating {paths:?}:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "serve did not create {paths:?} within 20 s:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Runs `serve` expecting it to exit by itself within 20 s: its exit code and output.
    fn serve_expecting_exit(&self) -> (i32, String) {
        let (mut child, log) = self.spawn_serve();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "serve kept running:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        (
            status.code().unwrap_or(-1),
            std::fs::read_to_string(&log).unwrap(),
        )
    }

    /// The database and the crypto store of a first start.
    fn first_start_files(&self, db: &str, crypto: &str) -> Vec<std::path::PathBuf> {
        vec![
            self.etc().join(db),
            self.etc().join(crypto).join("passphrase"),
            self.etc().join(crypto).join("installation"),
        ]
    }
}

#[test]
fn relative_paths_in_the_config_land_beside_it_not_in_the_working_directory() {
    let install = Install::new();
    install.write_config("");
    install.generate_registration();
    install.serve_until(&install.first_start_files("matrix-os.db", "crypto"));
    let in_cwd: Vec<_> = std::fs::read_dir(install.cwd())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        in_cwd.is_empty(),
        "created in the working directory: {in_cwd:?}"
    );
}

#[test]
fn serve_refuses_a_fresh_database_beside_an_old_crypto_store_but_not_the_reverse() {
    let install = Install::new();
    install.write_config("");
    install.generate_registration();
    install.serve_until(&install.first_start_files("matrix-os.db", "crypto"));

    install.write_config("[database]\nurl = \"sqlite://fresh.db\"\n");
    let (code, out) = install.serve_expecting_exit();
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("encryption.store_dir") && out.contains("database.url"),
        "{out}"
    );
    assert!(
        out.contains(
            &install
                .etc()
                .canonicalize()
                .unwrap()
                .join("crypto")
                .display()
                .to_string()
        ),
        "{out}"
    );

    // The old database with a fresh crypto store: twins get new devices, the service starts.
    install.write_config("[encryption]\nstore_dir = \"new-crypto\"\n");
    install.serve_until(&install.first_start_files("matrix-os.db", "new-crypto"));
    assert_eq!(
        std::fs::read_to_string(install.etc().join("crypto/installation")).unwrap(),
        std::fs::read_to_string(install.etc().join("new-crypto/installation")).unwrap(),
        "one installation"
    );
}
