//! `matrix-os serve`

use std::{path::Path, process::ExitCode};

use super::{EXIT_CONFIG, load_config};
use crate::{registration::Registration, service};

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
