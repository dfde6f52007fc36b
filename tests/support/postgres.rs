//! A throwaway PostgreSQL server for integration tests.
//!
//! Use from a test file with `#[path = "support/postgres.rs"] mod postgres;`, then
//! `let pg = postgres::PgServer::start(); let url = pg.url();`. The server runs on a free
//! loopback port with a private data directory, and is stopped (and the directory removed) when
//! the `PgServer` is dropped.
//!
//! Needs the PostgreSQL server binaries (`apt-get install -y postgresql`), found under
//! `/usr/lib/postgresql/*/bin` (or the folder named by `MATRIX_OS_PG_BIN`). PostgreSQL refuses
//! to run as root, so when the tests run as root the binaries run as the `postgres` user
//! through `runuser`.

#![allow(dead_code, clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running PostgreSQL server; stopped and deleted on drop.
pub(crate) struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

impl PgServer {
    /// Starts a fresh server (initdb, trust authentication, user `postgres`). Panics with the
    /// reason when it cannot, e.g. when PostgreSQL is not installed.
    pub(crate) fn start() -> PgServer {
        let bin = find_bin_dir();
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("matrix-os-pg-")
            .tempdir()
            .expect("cannot create a temporary folder for PostgreSQL");
        if as_postgres {
            run_checked(
                Command::new("chown").arg("postgres:").arg(dir.path()),
                "chown the PostgreSQL folder to postgres",
            );
        }
        let mut server = PgServer {
            bin,
            dir,
            port: 0,
            as_postgres,
        };
        let data = server.data_dir();
        let out = server
            .pg_command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-N",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output();
        check(out, "initdb");
        // A free port can be taken by someone else between choosing and binding it: retry.
        let mut last_log = String::new();
        for _ in 0..5 {
            server.port = free_port();
            if server.pg_ctl_start() {
                return server;
            }
            last_log = std::fs::read_to_string(server.log_file()).unwrap_or_default();
        }
        panic!("PostgreSQL did not start; server log:\n{last_log}");
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port the server listens on (127.0.0.1).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// A URL for another database on this server, created empty.
    pub(crate) fn create_database(&self, name: &str) -> String {
        let out = self
            .pg_command("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
            ])
            .arg(format!("CREATE DATABASE \"{name}\""))
            .output();
        check(out, "psql CREATE DATABASE");
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Stops the server (fast shutdown) and starts it again on the same port and data.
    pub(crate) fn restart(&self) {
        self.stop();
        assert!(
            self.pg_ctl_start(),
            "PostgreSQL did not restart; log:\n{}",
            std::fs::read_to_string(self.log_file()).unwrap_or_default()
        );
    }

    fn stop(&self) {
        let _ = self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "stop"])
            .output();
    }

    fn pg_ctl_start(&self) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-o")
            .arg(options)
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", "60", "start"])
            .output();
        matches!(out, Ok(o) if o.status.success())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// A command running PostgreSQL tool `tool`, as `postgres` when we are root.
    fn pg_command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd.current_dir("/");
            cmd
        } else {
            Command::new(program)
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        // The TempDir field removes the folder afterwards.
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn find_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("MATRIX_OS_PG_BIN") {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").is_file() {
            return dir;
        }
        panic!("MATRIX_OS_PG_BIN={} has no initdb", dir.display());
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry
                .file_name()
                .to_str()?
                .split('.')
                .next()?
                .parse()
                .ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); these tests need a \
             real server: run `apt-get install -y postgresql` (after `apt-get update`)"
        ),
    }
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot find a free TCP port")
}

fn run_checked(cmd: &mut Command, what: &str) {
    check(cmd.output(), what);
}

fn check(out: std::io::Result<Output>, what: &str) {
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "{what} failed ({}):\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run {what}: {e}"),
    }
}
