//! A running Synapse child process.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::process::{Child, Command};

use super::{DevError, tail_lines};

/// How long Synapse may take to answer after being spawned.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long Synapse may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A Synapse process started by this program. Dropping it kills the process (SIGKILL); call
/// [`Synapse::stop`] for a clean shutdown.
#[derive(Debug)]
pub struct Synapse {
    python: PathBuf,
    config: PathBuf,
    client_url: String,
    log: PathBuf,
    child: Option<Child>,
    startup: Duration,
}

impl Synapse {
    /// Spawns `python -m synapse.app.homeserver -c <config>` and waits until
    /// `GET {client_url}/_matrix/client/versions` answers (at most 60 s).
    ///
    /// The process's stdout and stderr are appended to `synapse-console.log` next to the
    /// config (Synapse's own log goes where its log config says). If the process exits early or
    /// does not answer in time, the error carries the end of that log.
    pub async fn start(python: &Path, config: &Path, client_url: &str) -> Result<Self, DevError> {
        let mut synapse = Self {
            python: python.to_path_buf(),
            config: std::path::absolute(config).map_err(DevError::io(config))?,
            client_url: client_url.trim_end_matches('/').to_string(),
            log: PathBuf::new(),
            child: None,
            startup: Duration::ZERO,
        };
        synapse.log = synapse.dir().join("synapse-console.log");
        synapse.spawn_and_wait().await?;
        Ok(synapse)
    }

    /// The client-server API base URL, without a trailing slash.
    pub fn client_url(&self) -> &str {
        &self.client_url
    }

    /// The `homeserver.yaml` in use.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The file receiving Synapse's stdout and stderr.
    pub fn console_log_path(&self) -> &Path {
        &self.log
    }

    /// Synapse's own log file (`homeserver.log` next to the config, as devenv writes it).
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("homeserver.log")
    }

    /// The process ID while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// How long the last start took until the client API answered.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Whether the process is still running (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits until the process exits by itself; returns a description of its exit status.
    /// Returns at once when it is not running.
    pub async fn wait(&mut self) -> String {
        match self.child.as_mut() {
            Some(child) => {
                let status = child.wait().await;
                self.child = None;
                match status {
                    Ok(status) => status.to_string(),
                    Err(e) => format!("unknown ({e})"),
                }
            }
            None => "not running".into(),
        }
    }

    /// Stops Synapse: SIGTERM, then SIGKILL if it has not exited within 10 s. Does nothing if
    /// it is not running.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        if let Some(pid) = child.id() {
            // No `unsafe` here, so the signal is sent with the `kill` program.
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
        }
        if tokio::time::timeout(STOP_TIMEOUT, child.wait())
            .await
            .is_err()
        {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Stops Synapse (if running) and starts it again on the same config and data.
    pub async fn restart(&mut self) -> Result<(), DevError> {
        self.stop().await;
        self.spawn_and_wait().await
    }

    /// Starts Synapse again after [`Synapse::stop`]; does nothing if it is running.
    pub async fn start_again(&mut self) -> Result<(), DevError> {
        if self.is_running() {
            return Ok(());
        }
        self.spawn_and_wait().await
    }

    fn dir(&self) -> PathBuf {
        self.config
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    async fn spawn_and_wait(&mut self) -> Result<(), DevError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .no_proxy()
            .build()
            .map_err(|e| DevError::Http {
                what: "HTTP client".into(),
                message: e.to_string(),
            })?;
        let versions = format!("{}/_matrix/client/versions", self.client_url);
        if port_in_use(&self.client_url).await {
            return Err(DevError::PortInUse {
                url: self.client_url.clone(),
            });
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(DevError::io(&self.log))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let log_err = log.try_clone().map_err(DevError::io(&self.log))?;
        let started = Instant::now();
        let mut child = Command::new(&self.python)
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(&self.config)
            .current_dir(self.dir())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| DevError::Command {
                what: format!(
                    "starting {} -m synapse.app.homeserver",
                    self.python.display()
                ),
                message: e.to_string(),
            })?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(DevError::Exited {
                    status: status.to_string(),
                    log: self.log.clone(),
                    tail: self.log_tail(log_start),
                });
            }
            if let Ok(resp) = http.get(&versions).send().await
                && resp.status().is_success()
            {
                break;
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(DevError::StartTimeout {
                    url: self.client_url.clone(),
                    secs: START_TIMEOUT.as_secs(),
                    log: self.log.clone(),
                    tail: self.log_tail(log_start),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.startup = started.elapsed();
        self.child = Some(child);
        Ok(())
    }

    /// The end of the console log written since `offset`, plus the end of `homeserver.log`.
    fn log_tail(&self, offset: u64) -> String {
        let console = std::fs::read(&self.log).unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(0).min(console.len());
        let mut tail = tail_lines(&String::from_utf8_lossy(&console[start..]), 30);
        if tail.trim().is_empty() {
            let main_log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            tail = tail_lines(&main_log, 30);
        }
        tail
    }
}

/// Whether something accepts TCP connections at the host and port of `url`.
async fn port_in_use(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
        return false;
    };
    matches!(
        tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect((host.to_string(), port))
        )
        .await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_busy_port_is_reported_before_spawning() {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let dir = tempfile::tempdir().unwrap();
        let err = Synapse::start(
            Path::new("/nonexistent/python"),
            &dir.path().join("hs.yaml"),
            &url,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, DevError::PortInUse { .. }), "{err}");
    }

    #[tokio::test]
    async fn an_early_exit_reports_the_log() {
        // A stand-in "python" that fails like a broken config does.
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("python");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho 'Error in configuration at listeners' >&2\nexit 1\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = Synapse::start(
            &fake,
            &dir.path().join("homeserver.yaml"),
            &format!("http://127.0.0.1:{port}"),
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, DevError::Exited { .. }), "{text}");
        assert!(
            text.contains("Error in configuration at listeners"),
            "{text}"
        );
    }
}
