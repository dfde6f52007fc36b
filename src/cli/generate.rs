//! `matrix-os generate-registration`

use std::{path::Path, process::ExitCode};

use super::{EXIT_CONFIG, load_config};
use crate::registration::Registration;

pub(super) fn run(config_path: &Path, output: Option<&Path>, force: bool) -> ExitCode {
    let config = match load_config(config_path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let path = output.unwrap_or(&config.appservice.registration);
    let registration = Registration::generate(&config);
    if let Err(err) = registration.write(path, force) {
        eprintln!("error: {err}");
        return ExitCode::from(EXIT_CONFIG);
    }
    println!("Wrote {}.", path.display());
    println!(
        "Add it to app_service_config_files in the homeserver's homeserver.yaml and restart the homeserver.\n\
         Keep appservice.registration in {} pointing at this file: the service reads its tokens from it.",
        config_path.display()
    );
    ExitCode::SUCCESS
}
