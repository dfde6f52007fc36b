//! Relative paths in a config file mean "beside the config file", whatever the working
//! directory of the process: `matrix-os serve -c /etc/matrix-os/config.toml` started from `/`
//! keeps its database, homes and keys in `/etc/matrix-os/`.

use std::path::{Path, PathBuf};

use super::Config;

impl Config {
    /// Puts every relative path under `base` (an absolute folder): `appservice.registration`,
    /// `home.dir`, `home.template`, `encryption.store_dir` and the file of a SQLite
    /// `database.url`. Absolute paths, empty ones, in-memory and PostgreSQL databases stay as
    /// they are.
    pub(super) fn resolve_paths(&mut self, base: &Path) {
        resolve(&mut self.appservice.registration, base);
        resolve(&mut self.home.dir, base);
        if let Some(template) = &mut self.home.template {
            resolve(template, base);
        }
        resolve(&mut self.encryption.store_dir, base);
        self.database.url = crate::storage::sqlite_url_relative_to(&self.database.url, base);
    }
}

/// The folder relative paths in the config file at `path` are read against: its folder (the
/// working directory when `path` has no folder part), canonical, so that `..` in a path means
/// what the file system says even when the folder was reached through a symbolic link.
pub(super) fn base_folder(path: &Path) -> std::io::Result<PathBuf> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    folder.canonicalize()
}

fn resolve(path: &mut PathBuf, base: &Path) {
    if !path.as_os_str().is_empty() && path.is_relative() {
        *path = base.join(&*path);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const PATHS: &str = r#"
[homeserver]
url = "http://127.0.0.1:8008"
server_name = "example.org"
[appservice]
url = "http://127.0.0.1:8009"
registration = "reg/registration.yaml"
[database]
url = "sqlite://data/matrix-os.db?mode=rwc"
[home]
dir = "homes"
template = "../template"
[encryption]
store_dir = "/var/lib/matrix-os/crypto"
"#;

    fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc").join("config.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn relative_paths_are_read_beside_the_config_file() {
        let (dir, path) = write_config(PATHS);
        let config = Config::load_with_env(&path, []).unwrap();
        let etc = dir.path().join("etc").canonicalize().unwrap();
        assert_eq!(
            config.appservice.registration,
            etc.join("reg/registration.yaml")
        );
        assert_eq!(config.home.dir, etc.join("homes"));
        assert_eq!(config.home.template, Some(etc.join("../template")));
        assert_eq!(
            config.encryption.store_dir,
            PathBuf::from("/var/lib/matrix-os/crypto"),
            "absolute paths stay"
        );
        assert_eq!(
            config.database.url,
            format!("sqlite://{}/data/matrix-os.db?mode=rwc", etc.display())
        );
    }

    #[test]
    fn defaults_and_environment_overrides_are_resolved_too() {
        let (dir, path) = write_config(
            "[homeserver]\nurl = \"http://127.0.0.1:8008\"\nserver_name = \"example.org\"\n\
             [appservice]\nurl = \"http://127.0.0.1:8009\"\n",
        );
        let env = [(
            "MATRIX_OS__ENCRYPTION__STORE_DIR".to_owned(),
            "keys".to_owned(),
        )];
        let config = Config::load_with_env(&path, env).unwrap();
        let etc = dir.path().join("etc").canonicalize().unwrap();
        assert_eq!(
            config.appservice.registration,
            etc.join("registration.yaml")
        );
        assert_eq!(config.home.dir, etc.join("homes"));
        assert_eq!(config.home.template, None);
        assert_eq!(config.encryption.store_dir, etc.join("keys"));
        assert_eq!(
            config.database.url,
            format!("sqlite://{}/matrix-os.db", etc.display())
        );
    }

    #[test]
    fn other_databases_are_left_alone() {
        for url in ["sqlite::memory:", "sqlite:///abs/a.db", "postgres://u@h/db"] {
            let (_dir, path) =
                write_config(&PATHS.replace("sqlite://data/matrix-os.db?mode=rwc", url));
            assert_eq!(Config::load_with_env(&path, []).unwrap().database.url, url);
        }
    }

    #[test]
    fn text_without_a_file_keeps_its_paths() {
        let config = Config::from_toml_str(PATHS).unwrap();
        assert_eq!(
            config.appservice.registration,
            PathBuf::from("reg/registration.yaml")
        );
        assert_eq!(config.home.dir, PathBuf::from("homes"));
        assert_eq!(config.database.url, "sqlite://data/matrix-os.db?mode=rwc");
    }

    #[test]
    fn the_base_folder_is_the_canonical_folder_of_the_file() {
        let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
        assert_eq!(base_folder(Path::new("config.toml")).unwrap(), cwd);
        assert_eq!(base_folder(Path::new("./config.toml")).unwrap(), cwd);
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a");
        std::fs::create_dir_all(nested.join("b")).unwrap();
        assert_eq!(
            base_folder(&nested.join("b/../config.toml")).unwrap(),
            nested.canonicalize().unwrap(),
            "no `..` left in the folder"
        );
    }
}
