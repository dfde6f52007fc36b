//! `matrix-os dev`: a local Synapse and the service together, for someone who just cloned the
//! repository.

use std::{path::Path, process::ExitCode};

use crate::{
    config::Config,
    devenv::{DevOptions, connect_instructions, prepare_dev},
    registration::Registration,
    service,
};

pub(super) async fn run(dir: &Path) -> ExitCode {
    println!("Preparing the local homeserver in {} ...", dir.display());
    let mut setup = match prepare_dev(dir, DevOptions::default()).await {
        Ok(setup) => setup,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let started = async {
        let config = Config::load(&setup.config_path)?;
        let registration = Registration::read_for(&config)?;
        anyhow::Ok(service::start(config, registration).await?)
    }
    .await;
    let running = match started {
        Ok(running) => running,
        Err(err) => {
            eprintln!("error: {err:#}");
            setup.synapse.stop().await;
            return ExitCode::FAILURE;
        }
    };
    println!("\n{}\n", connect_instructions(&setup));
    println!("Press Ctrl-C to stop both.");
    super::serve::wait_for_signal().await;
    println!("Stopping ...");
    running.stop().await;
    setup.synapse.stop().await;
    ExitCode::SUCCESS
}
