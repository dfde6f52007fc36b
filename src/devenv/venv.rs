//! A Python virtual environment holding a pinned Synapse.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Instant,
};

use super::{DevError, tail_lines};

/// The Synapse release that is installed and tested against.
pub const SYNAPSE_VERSION: &str = "1.163.2";

/// File inside the venv recording the installed Synapse version (written after a good install).
const MARKER: &str = ".matrix-os-synapse-version";

/// The venv's Python interpreter.
fn venv_python(dir: &Path) -> PathBuf {
    dir.join("bin").join("python")
}

/// The `python3` used to create the venv: `$MATRIX_OS_PYTHON` or `python3` on `PATH`.
fn base_python() -> String {
    std::env::var("MATRIX_OS_PYTHON")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "python3".into())
}

fn output_text(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

fn marker_matches(dir: &Path) -> bool {
    venv_python(dir).exists()
        && std::fs::read_to_string(dir.join(MARKER)).is_ok_and(|v| v.trim() == SYNAPSE_VERSION)
}

/// Makes sure `dir` is a venv with Synapse [`SYNAPSE_VERSION`] and returns its Python.
///
/// Runs blocking programs (`python3 -m venv`, `pip`); from async code use
/// [`ensure_synapse_venv`]. A second call finds a marker file and returns at once. Several
/// processes may call this at the same time: they serialize on the lock file `<dir>.lock`.
pub fn ensure_synapse_venv_blocking(dir: &Path) -> Result<PathBuf, DevError> {
    let python = venv_python(dir);
    if marker_matches(dir) {
        return Ok(python);
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(DevError::io(parent))?;
    }
    let lock_path = dir.with_extension("lock");
    let lock = File::create(&lock_path).map_err(DevError::io(&lock_path))?;
    lock.lock().map_err(DevError::io(&lock_path))?;
    // Another process may have finished the install while this one waited for the lock.
    if marker_matches(dir) {
        return Ok(python);
    }
    let started = Instant::now();
    if !python_with_pip(&python) {
        refuse_foreign_dir(dir)?;
        eprintln!(
            "matrix-os: creating a Python venv for Synapse in {}",
            dir.display()
        );
        create_venv(&base_python(), dir)?;
    }
    match installed_version(&python) {
        Some(v) if v == SYNAPSE_VERSION => {}
        installed => {
            match installed {
                Some(v) => eprintln!(
                    "matrix-os: replacing Synapse {v} with {SYNAPSE_VERSION} in {}",
                    dir.display()
                ),
                None => eprintln!(
                    "matrix-os: installing Synapse {SYNAPSE_VERSION} into {} \
                     (first run only; takes about a minute)...",
                    dir.display()
                ),
            }
            pip_install(&python, dir)?;
            eprintln!(
                "matrix-os: Synapse {SYNAPSE_VERSION} installed in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    std::fs::write(dir.join(MARKER), SYNAPSE_VERSION).map_err(DevError::io(&dir.join(MARKER)))?;
    drop(lock);
    Ok(python)
}

/// Async wrapper of [`ensure_synapse_venv_blocking`] (runs it on the blocking thread pool).
pub async fn ensure_synapse_venv(dir: &Path) -> Result<PathBuf, DevError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || ensure_synapse_venv_blocking(&dir))
        .await
        .map_err(|e| DevError::Command {
            what: "venv set-up".into(),
            message: e.to_string(),
        })?
}

/// Whether `python` exists and has a working pip.
fn python_with_pip(python: &Path) -> bool {
    python.exists()
        && Command::new(python)
            .args(["-m", "pip", "--version"])
            .output()
            .is_ok_and(|o| o.status.success())
}

/// `python3 -m venv --clear` empties the directory: only allow that for a venv or an empty one.
fn refuse_foreign_dir(dir: &Path) -> Result<(), DevError> {
    let Ok(mut entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    if entries.next().is_none() || dir.join("pyvenv.cfg").exists() {
        return Ok(());
    }
    Err(DevError::Corrupt {
        path: dir.to_path_buf(),
        message: "exists but is not a Python venv; remove it or choose another venv path".into(),
    })
}

fn create_venv(base: &str, dir: &Path) -> Result<(), DevError> {
    let output = Command::new(base)
        .args(["-m", "venv", "--clear"])
        .arg(dir)
        .output()
        .map_err(|e| DevError::PythonMissing {
            message: if e.kind() == std::io::ErrorKind::NotFound {
                format!("`{base}` was not found.")
            } else {
                format!("running `{base}`: {e}")
            },
        })?;
    if !output.status.success() {
        return Err(DevError::PythonMissing {
            message: format!(
                "`{base} -m venv {}` failed:\n{}",
                dir.display(),
                tail_lines(&output_text(&output), 15)
            ),
        });
    }
    Ok(())
}

/// The installed matrix-synapse version, if any.
fn installed_version(python: &Path) -> Option<String> {
    let output = Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('matrix-synapse'))",
        ])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn pip_install(python: &Path, dir: &Path) -> Result<(), DevError> {
    let output = Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            &format!("matrix-synapse=={SYNAPSE_VERSION}"),
        ])
        .output()
        .map_err(|e| DevError::PipInstall {
            version: SYNAPSE_VERSION,
            venv: dir.to_path_buf(),
            output: e.to_string(),
        })?;
    if !output.status.success() {
        return Err(DevError::PipInstall {
            version: SYNAPSE_VERSION,
            venv: dir.to_path_buf(),
            output: tail_lines(&output_text(&output), 25),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn marker_needs_python_and_the_pinned_version() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!marker_matches(dir.path()));
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/python"), "").unwrap();
        std::fs::write(dir.path().join(MARKER), "1.0.0\n").unwrap();
        assert!(!marker_matches(dir.path()));
        std::fs::write(dir.path().join(MARKER), format!("{SYNAPSE_VERSION}\n")).unwrap();
        assert!(marker_matches(dir.path()));
        // With the marker in place no program is run.
        assert_eq!(
            ensure_synapse_venv_blocking(dir.path()).unwrap(),
            dir.path().join("bin/python")
        );
    }

    #[test]
    fn a_foreign_directory_is_not_cleared() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("precious.txt"), "keep me").unwrap();
        let err = ensure_synapse_venv_blocking(dir.path()).unwrap_err();
        assert!(matches!(err, DevError::Corrupt { .. }), "{err}");
        assert!(dir.path().join("precious.txt").exists());
    }

    #[test]
    fn missing_python_names_the_package() {
        let dir = tempfile::tempdir().unwrap();
        let err = create_venv("/nonexistent/python3", &dir.path().join("venv")).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, DevError::PythonMissing { .. }), "{text}");
        assert!(text.contains("python3-venv"), "{text}");
        assert!(text.contains("/nonexistent/python3"), "{text}");
    }

    /// A fresh install into an empty directory by two threads at once (slow: downloads
    /// Synapse; run with `cargo test --lib devenv -- --ignored`).
    #[test]
    #[ignore = "downloads Synapse (~20-60 s, ~240 MB)"]
    fn fresh_install_is_safe_to_run_twice_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let venv = dir.path().join("venv");
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let venv = venv.clone();
                std::thread::spawn(move || ensure_synapse_venv_blocking(&venv))
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap().unwrap(), venv.join("bin/python"));
        }
        assert_eq!(
            installed_version(&venv.join("bin/python")).as_deref(),
            Some(SYNAPSE_VERSION)
        );
        let again = std::time::Instant::now();
        ensure_synapse_venv_blocking(&venv).unwrap();
        assert!(again.elapsed() < std::time::Duration::from_millis(100));
    }
}
