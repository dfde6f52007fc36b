//! The command line: `generate-registration`, `serve`, `dev`, `doctor`.

mod dev;
mod doctor;
mod generate;
mod serve;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};

/// Exit code for a bad config or registration (the admin must fix a file).
pub const EXIT_CONFIG: u8 = 2;

/// matrix-os: an AI twin for every Matrix user.
#[derive(Debug, Parser)]
#[command(name = "matrix-os", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the appservice registration file for the homeserver (fresh random tokens).
    GenerateRegistration {
        /// The service config.
        #[arg(short, long, default_value = "config.toml")]
        config: PathBuf,
        /// Where to write; default: appservice.registration from the config.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Replace an existing file (the homeserver must then load the new one).
        #[arg(long)]
        force: bool,
    },
    /// Run the service.
    Serve {
        /// The service config.
        #[arg(short, long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Run a local Synapse and the service together, for trying matrix-os out.
    Dev {
        /// Folder for the venv, homeserver, database and homes.
        #[arg(long, default_value = ".matrix-os-dev")]
        dir: PathBuf,
    },
    /// Check config, database, homeserver, ping both ways and the model endpoint.
    Doctor {
        /// The service config.
        #[arg(short, long, default_value = "config.toml")]
        config: PathBuf,
    },
}

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self) -> ExitCode {
        match self.command {
            Command::GenerateRegistration {
                config,
                output,
                force,
            } => generate::run(&config, output.as_deref(), force),
            Command::Serve { config } => serve::run(&config).await,
            Command::Dev { dir } => dev::run(&dir).await,
            Command::Doctor { config } => doctor::run(&config).await,
        }
    }
}

/// Loads the config or prints why not.
fn load_config(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|err: ConfigError| {
        eprintln!("error: {err}");
        ExitCode::from(EXIT_CONFIG)
    })
}
