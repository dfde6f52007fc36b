//! `matrix-os serve`

use std::{path::Path, process::ExitCode};

use super::{EXIT_CONFIG, load_config};
use crate::{
    config::Config,
    installation::{self, InstallationError},
    registration::Registration,
    service,
    storage::Store,
};

pub(super) async fn run(config_path: &Path) -> ExitCode {
    let config = match load_config(config_path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let registration = match Registration::read_for(&config) {
        Ok(registration) => registration,
        Err(err) => {
            eprintln!("error: {err}");
            eprintln!(
                "hint: `matrix-os generate-registration -c {}` writes one",
                config_path.display()
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(code) = check_installation(&config).await {
        return code;
    }
    let running = match service::start(config, registration).await {
        Ok(running) => running,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    wait_for_signal().await;
    tracing::info!("shutting down");
    running.stop().await;
    ExitCode::SUCCESS
}

/// Refuses (exit code 2) a crypto store and a database of two different installations.
async fn check_installation(config: &Config) -> Result<(), ExitCode> {
    let store = match Store::connect(&config.database.url).await {
        Ok(store) => store,
        Err(err) => {
            // The same words as when service::start cannot open it.
            eprintln!("error: cannot open the database (database.url): {err}");
            return Err(ExitCode::FAILURE);
        }
    };
    let checked = installation::check(&store, &config.encryption.store_dir).await;
    store.close().await;
    match checked {
        Ok(id) => {
            tracing::info!(installation = %id, "database and crypto store belong together");
            Ok(())
        }
        Err(err) => {
            eprintln!("error: {err}");
            Err(match err {
                InstallationError::Mismatch { .. } => ExitCode::from(EXIT_CONFIG),
                _ => ExitCode::FAILURE,
            })
        }
    }
}

/// Waits for Ctrl-C or SIGTERM.
pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
