//! Twins: which owners may have one, registering the puppet on the homeserver, and opening the
//! owner's file home.

mod settings;

pub use self::settings::{SETTINGS_FILE, TwinSettings};

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use globset::{Glob, GlobSet, GlobSetBuilder};
use ruma::{OwnedUserId, UserId};

use crate::{
    appservice::Provisioner,
    crypto::{Crypto, CryptoError},
    home::{Home, HomeError},
    matrix::{MatrixClient, MatrixError, TwinNaming},
    storage::{StorageError, Store, TwinRow},
};

/// A twin could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum TwinError {
    /// The owner may not have a twin.
    #[error("{0} may not have a twin (see access.owners)")]
    NotAllowed(String),
    /// The homeserver refused.
    #[error("homeserver: {0}")]
    Matrix(#[from] MatrixError),
    /// The home could not be opened or created.
    #[error("home: {0}")]
    Home(#[from] HomeError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The twin's device or keys could not be set up.
    #[error("encryption: {0}")]
    Crypto(#[from] CryptoError),
    /// A blocking task died.
    #[error("internal: {0}")]
    Internal(String),
}

/// A twin ready to act.
#[derive(Debug, Clone)]
pub struct Twin {
    /// The twin's MXID.
    pub twin_id: OwnedUserId,
    /// The owner's MXID.
    pub owner_id: OwnedUserId,
    /// The owner's file home.
    pub home: Arc<Home>,
}

/// The directory of twins.
pub struct Twins {
    naming: TwinNaming,
    owners: GlobSet,
    store: Store,
    matrix: MatrixClient,
    crypto: Arc<Crypto>,
    home_dir: PathBuf,
    template: Option<PathBuf>,
    homes: Mutex<HashMap<OwnedUserId, Arc<Home>>>,
    provisioning: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Twins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Twins")
            .field("naming", &self.naming)
            .field("home_dir", &self.home_dir)
            .finish()
    }
}

/// A folder name for a localpart that can never be `..`, hidden, or contain `/`.
pub fn home_folder_name(localpart: &str) -> String {
    let mut out = String::with_capacity(localpart.len() + 1);
    if localpart.starts_with('.') {
        out.push('_');
    }
    for c in localpart.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '=' | '+') {
            out.push(c);
        } else {
            out.push_str(&format!("%{:02x}", c as u32));
        }
    }
    out
}

impl Twins {
    /// A directory for `naming`'s server; `owner_globs` say who may have a twin.
    pub fn new(
        naming: TwinNaming,
        owner_globs: &[String],
        store: Store,
        matrix: MatrixClient,
        crypto: Arc<Crypto>,
        home_dir: &Path,
        template: Option<&Path>,
    ) -> Result<Self, globset::Error> {
        let mut builder = GlobSetBuilder::new();
        for glob in owner_globs {
            builder.add(Glob::new(glob)?);
        }
        Ok(Self {
            naming,
            owners: builder.build()?,
            store,
            matrix,
            crypto,
            home_dir: home_dir.to_path_buf(),
            template: template.map(Path::to_path_buf),
            homes: Mutex::new(HashMap::new()),
            provisioning: tokio::sync::Mutex::new(()),
        })
    }

    /// Twin naming in use.
    pub fn naming(&self) -> &TwinNaming {
        &self.naming
    }

    /// Whether `owner` may have a twin: a local user matching `access.owners`.
    pub fn may_have_twin(&self, owner: &UserId) -> bool {
        owner.server_name().as_str() == self.naming.server_name()
            && !self.naming.is_twin(owner)
            && self.owners.is_match(owner.as_str())
    }

    /// Opens (creating on first use) the owner's home.
    pub async fn home(&self, owner: &UserId) -> Result<Arc<Home>, TwinError> {
        if let Some(home) = self
            .homes
            .lock()
            .map_err(|e| TwinError::Internal(e.to_string()))?
            .get(owner)
        {
            return Ok(home.clone());
        }
        let root = self.home_dir.join(home_folder_name(owner.localpart()));
        let template = self.template.clone();
        let owner_id = owner.to_string();
        let home = tokio::task::spawn_blocking(move || {
            Home::open_or_create(&root, template.as_deref(), &owner_id)
        })
        .await
        .map_err(|e| TwinError::Internal(e.to_string()))??;
        let home = Arc::new(home);
        let mut homes = self
            .homes
            .lock()
            .map_err(|e| TwinError::Internal(e.to_string()))?;
        Ok(homes.entry(owner.to_owned()).or_insert(home).clone())
    }

    async fn is_registered(&self, twin_id: &UserId) -> Result<bool, TwinError> {
        Ok(self
            .store
            .get_twin(twin_id.as_str())
            .await?
            .is_some_and(|row| row.registered))
    }

    /// Makes the owner's twin exist: account registered, display name set, home created.
    pub async fn ensure(&self, owner: &UserId) -> Result<Twin, TwinError> {
        if !self.may_have_twin(owner) {
            return Err(TwinError::NotAllowed(owner.to_string()));
        }
        let twin_id = self
            .naming
            .twin_of(owner)
            .ok_or_else(|| TwinError::NotAllowed(owner.to_string()))?;
        let home = self.home(owner).await?;
        if self.is_registered(&twin_id).await? {
            self.crypto.ensure_device(&twin_id).await?;
            return Ok(Twin {
                twin_id,
                owner_id: owner.to_owned(),
                home,
            });
        }
        // One registration at a time, so two rooms racing for a new twin register it once.
        let _guard = self.provisioning.lock().await;
        if self.is_registered(&twin_id).await? {
            self.crypto.ensure_device(&twin_id).await?;
            return Ok(Twin {
                twin_id,
                owner_id: owner.to_owned(),
                home,
            });
        }
        self.matrix.register_puppet(twin_id.localpart()).await?;
        let home_for_name = home.clone();
        let display_name = tokio::task::spawn_blocking(move || home_for_name.display_name())
            .await
            .map_err(|e| TwinError::Internal(e.to_string()))??
            .unwrap_or_else(|| format!("{}'s AI", owner.localpart()));
        if let Err(err) = self.matrix.set_display_name(&twin_id, &display_name).await {
            tracing::warn!(%twin_id, %err, "could not set the twin's display name");
        }
        // Its device and keys exist before it joins anything, so people's clients can share
        // room keys with it from the first message.
        self.crypto.ensure_device(&twin_id).await?;
        self.store
            .upsert_twin(&TwinRow {
                twin_id: twin_id.to_string(),
                owner_id: owner.to_string(),
                registered: true,
                display_name: Some(display_name),
            })
            .await?;
        tracing::info!(%twin_id, %owner, "twin provisioned");
        Ok(Twin {
            twin_id,
            owner_id: owner.to_owned(),
            home,
        })
    }
}

#[async_trait]
impl Provisioner for Twins {
    async fn provision(&self, user_id: &UserId) -> anyhow::Result<bool> {
        let Some(owner) = self.naming.owner_of(user_id) else {
            return Ok(false);
        };
        if !self.may_have_twin(&owner) {
            return Ok(false);
        }
        self.ensure(&owner).await?;
        Ok(true)
    }

    fn owner_of_twin(&self, user_id: &UserId) -> Option<OwnedUserId> {
        self.naming
            .owner_of(user_id)
            .filter(|owner| self.may_have_twin(owner))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::home_folder_name;

    #[test]
    fn home_folder_names_stay_inside() {
        assert_eq!(home_folder_name("alice"), "alice");
        assert_eq!(home_folder_name(".."), "_..");
        assert_eq!(home_folder_name("a/b"), "a%2fb");
        assert!(!home_folder_name(".hidden").starts_with('.'));
    }
}
