//! Which installation a database and a crypto store belong to, so that the two are never mixed.
//!
//! A twin's device and keys live in `encryption.store_dir`; what the service knows about the
//! twin (and the rooms it is in) lives in `database.url`. Run with the crypto store of one
//! installation and the database of another, twins would act with keys their homeserver's
//! records do not match. So each installation gets a random id, recorded both in the database
//! (`installation` table) and in `<store_dir>/installation`, and [`check`] refuses to start when
//! the two clearly disagree:
//!
//! | database | store dir | outcome |
//! | --- | --- | --- |
//! | no id | no id | a new id is recorded in both |
//! | id | no id | the database's id is written into the store dir (also when the folder holds twin stores from before ids existed: adopted) |
//! | no id, no twins | id | refused: a fresh database beside an old crypto store |
//! | no id, twins | id | the store dir's id is recorded in the database, with a warning (see below) |
//! | id | the same id | fine |
//! | id | another id | refused |
//!
//! A database that has twins but no id was last used by a version from before installation ids
//! (every start of this version records one), for example an older backup restored beside the
//! current crypto store. That is not *clearly* another installation, so it is adopted rather
//! than refused; the log says so.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use crate::storage::{StorageError, Store};

/// Name of the file in `encryption.store_dir` that holds the installation id.
pub const FILE_NAME: &str = "installation";

/// Longest id accepted from the file (ours are 32 characters).
const MAX_ID_LEN: usize = 128;

/// The random id of one installation (128 bits, as 32 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstallationId(String);

impl InstallationId {
    /// A new random id.
    pub fn random() -> Self {
        Self(format!("{:032x}", rand::random::<u128>()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id in `text` (surrounding white space ignored), if it looks like one: printable
    /// ASCII without spaces, at most 128 characters.
    fn parse(text: &str) -> Option<Self> {
        let id = text.trim();
        let fine =
            !id.is_empty() && id.len() <= MAX_ID_LEN && id.chars().all(|c| c.is_ascii_graphic());
        fine.then(|| Self(id.to_owned()))
    }
}

impl std::fmt::Display for InstallationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why the installation could not be checked, or why it must not start.
#[derive(Debug, thiserror::Error)]
pub enum InstallationError {
    /// The crypto store and the database belong to different installations.
    #[error(
        "encryption.store_dir ({store_dir}) belongs to another installation than database.url \
         ({database}): {detail}; point one of them at the other's installation, or at a fresh \
         folder/database",
        store_dir = store_dir.display()
    )]
    Mismatch {
        /// The store dir.
        store_dir: PathBuf,
        /// The database URL, password removed.
        database: String,
        /// What disagrees.
        detail: String,
    },
    /// The installation file holds something that is not an id.
    #[error(
        "encryption.store_dir: {path} does not hold an installation id; restore it from a backup, \
         or write the id recorded in the database's `installation` table into it",
        path = path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
    },
    /// The installation file could not be read or written.
    #[error("encryption.store_dir: cannot {action} {path}: {source}", path = path.display())]
    Io {
        /// What was being done ("read", "write").
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database failed.
    #[error("database.url: {0}")]
    Storage(#[from] StorageError),
}

/// Checks that `store` and the crypto store in `store_dir` belong to one installation,
/// recording a new id where none is yet (see the module docs for the rules). Returns the
/// installation's id.
///
/// Call it before anything opens the crypto stores. An in-memory database holds nothing across
/// starts, so it is given a fresh id and the store dir is neither read nor written.
pub async fn check(store: &Store, store_dir: &Path) -> Result<InstallationId, InstallationError> {
    if store.is_in_memory() {
        let id = store
            .set_installation_id(InstallationId::random().as_str())
            .await?;
        return Ok(InstallationId(id));
    }
    let file = store_dir.join(FILE_NAME);
    let in_database = store.installation_id().await?;
    let in_dir = read_file(&file)?;
    let mismatch = |detail: String| InstallationError::Mismatch {
        store_dir: store_dir.to_owned(),
        database: store.redacted_url().to_owned(),
        detail,
    };
    match (in_database, in_dir) {
        (Some(database), Some(dir)) if database == dir.as_str() => Ok(dir),
        (Some(database), Some(dir)) => Err(mismatch(format!(
            "{} holds installation {dir}, the database installation {database}",
            file.display()
        ))),
        (None, Some(dir)) => {
            if store.twin_count().await? == 0 {
                return Err(mismatch(format!(
                    "{} holds installation {dir}, but the database is a fresh one (no \
                     installation id, no twins)",
                    file.display()
                )));
            }
            tracing::warn!(
                installation = %dir,
                store_dir = %store_dir.display(),
                "the database has twins but no installation id (last used by an older \
                 version); adopting the id of encryption.store_dir"
            );
            let recorded = store.set_installation_id(dir.as_str()).await?;
            if recorded != dir.as_str() {
                // Another instance recorded a different id meanwhile.
                return Err(mismatch(format!(
                    "{} holds installation {dir}, the database installation {recorded}",
                    file.display()
                )));
            }
            Ok(dir)
        }
        (in_database, None) => {
            let id = match in_database {
                Some(id) => id,
                None => {
                    store
                        .set_installation_id(InstallationId::random().as_str())
                        .await?
                }
            };
            if has_twin_stores(store_dir)? {
                tracing::info!(
                    installation = %id,
                    store_dir = %store_dir.display(),
                    "crypto store from before installation ids adopted"
                );
            }
            let id = InstallationId(id);
            write_file(store_dir, &id)?;
            Ok(id)
        }
    }
}

/// The id in `file`, `None` when there is no file.
fn read_file(file: &Path) -> Result<Option<InstallationId>, InstallationError> {
    match std::fs::read_to_string(file) {
        Ok(text) => {
            InstallationId::parse(&text)
                .map(Some)
                .ok_or_else(|| InstallationError::Corrupt {
                    path: file.to_owned(),
                })
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(InstallationError::Io {
            action: "read",
            path: file.to_owned(),
            source,
        }),
    }
}

/// Writes `<store_dir>/installation` (mode 0600 from its creation), atomically.
fn write_file(store_dir: &Path, id: &InstallationId) -> Result<(), InstallationError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| InstallationError::Io {
            action: "write",
            path,
            source,
        }
    };
    std::fs::create_dir_all(store_dir).map_err(io(store_dir))?;
    // One temporary name per process: two instances starting at once write the same id.
    let tmp = store_dir.join(format!("{FILE_NAME}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(format!("{id}\n").as_bytes())?;
        f.sync_all()
    });
    if let Err(err) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(err));
    }
    let file = store_dir.join(FILE_NAME);
    std::fs::rename(&tmp, &file).map_err(io(&file))
}

/// Whether `store_dir` holds twin crypto stores (sub-folders with a `device_id` file).
fn has_twin_stores(store_dir: &Path) -> Result<bool, InstallationError> {
    let entries = match std::fs::read_dir(store_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(InstallationError::Io {
                action: "read",
                path: store_dir.to_owned(),
                source,
            });
        }
    };
    Ok(entries
        .filter_map(Result::ok)
        .any(|entry| entry.path().join("device_id").is_file()))
}

#[cfg(test)]
mod tests;
