//! A real local Synapse homeserver for development and tests.
//!
//! `matrix-os dev` uses [`prepare_dev`] to set up everything a fresh clone needs (a Python venv
//! with Synapse, a homeserver config, the appservice registration, a matrix-os config and an
//! owner account) and to start Synapse; the integration tests use the lower-level pieces:
//! [`ensure_synapse_venv`], [`write_homeserver_config`], [`Synapse`] and [`register_user`].
//!
//! Everything listens on 127.0.0.1 only and is meant for a developer's machine, never for
//! production.

mod admin;
mod homeserver_yaml;
mod process;
mod setup;
mod venv;

pub use self::admin::{RegisteredUser, register_user, registration_mac};
pub use self::homeserver_yaml::{
    FederationSpec, HomeserverSpec, generate_signing_key, write_homeserver_config,
};
pub use self::process::Synapse;
pub use self::setup::{
    DEFAULT_DEV_DIR, DevOptions, DevSetup, LlmChoice, connect_instructions, prepare_dev,
};
pub use self::venv::{SYNAPSE_VERSION, ensure_synapse_venv, ensure_synapse_venv_blocking};

use std::path::{Path, PathBuf};

/// Something went wrong while setting up or running the local homeserver.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// `python3` is not installed or cannot create a venv.
    #[error(
        "{message}\nInstall Python 3.10 or newer with the venv module \
         (Debian/Ubuntu: `sudo apt-get install python3 python3-venv`), \
         or point MATRIX_OS_PYTHON at a python3 that has it."
    )]
    PythonMissing {
        /// What exactly failed.
        message: String,
    },
    /// `pip install matrix-synapse` failed.
    #[error("installing matrix-synapse {version} into {venv} failed:\n{output}")]
    PipInstall {
        /// The pinned version.
        version: &'static str,
        /// The venv directory.
        venv: PathBuf,
        /// The end of pip's output.
        output: String,
    },
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A helper program could not be run or failed.
    #[error("{what} failed: {message}")]
    Command {
        /// What was being run.
        what: String,
        /// The error or the end of the program's output.
        message: String,
    },
    /// The self-signed federation certificate could not be made.
    #[error("generating a TLS certificate: {0}")]
    Certificate(String),
    /// Something else is already listening where Synapse should.
    #[error(
        "{url} is already in use (is another Synapse or `matrix-os dev` running?); \
         stop it or choose another port"
    )]
    PortInUse {
        /// The client URL Synapse was meant to serve.
        url: String,
    },
    /// Synapse exited before it was ready.
    #[error("Synapse exited during start-up ({status}); end of its log {log}:\n{tail}")]
    Exited {
        /// The exit status.
        status: String,
        /// The log file.
        log: PathBuf,
        /// The end of the log.
        tail: String,
    },
    /// Synapse did not answer in time.
    #[error("Synapse did not answer at {url} within {secs} s; end of its log {log}:\n{tail}")]
    StartTimeout {
        /// The client URL polled.
        url: String,
        /// How long it was given.
        secs: u64,
        /// The log file.
        log: PathBuf,
        /// The end of the log.
        tail: String,
    },
    /// An HTTP request to the homeserver failed.
    #[error("{what}: {message}")]
    Http {
        /// The request.
        what: String,
        /// The cause.
        message: String,
    },
    /// The user ID is already registered (distinct so that callers can reuse the account).
    #[error("user name {localpart:?} is already taken")]
    UserTaken {
        /// The localpart that was asked for.
        localpart: String,
    },
    /// The homeserver refused a request.
    #[error("{what}: HTTP {status} {errcode}: {error}")]
    Matrix {
        /// The request.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The Matrix `errcode`.
        errcode: String,
        /// The Matrix `error` text.
        error: String,
    },
    /// The generated matrix-os config did not load.
    #[error("the generated config {path} is invalid: {source}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// The cause.
        source: crate::config::ConfigError,
    },
    /// The appservice registration could not be read or written.
    #[error(transparent)]
    Registration(#[from] crate::registration::RegistrationError),
    /// A file made by an earlier run is not in the expected shape.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to recover.
        message: String,
    },
}

impl DevError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DevError + use<> {
        let path = path.to_path_buf();
        move |source| DevError::Io { path, source }
    }
}

/// The last `max_lines` lines of `text`.
pub(crate) fn tail_lines(text: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(max_lines);
    lines[start..].join("\n")
}

/// Writes `contents` to `path` through a temporary file and a rename, with mode 0600 on Unix.
pub(crate) fn write_private(path: &Path, contents: &str) -> Result<(), DevError> {
    crate::private_file::write_private(path, contents.as_bytes()).map_err(DevError::io(path))
}
