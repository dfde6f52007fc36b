//! Twins: which owners may have one, registering the puppet on the homeserver, and opening the
//! owner's file home.

mod loaders;
mod settings;

pub use self::{
    loaders::{bridge_settings_of, meeting_policy_of, model_of, policy_of, settings_of},
    settings::{SETTINGS_FILE, TwinSettings},
};

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use globset::{Glob, GlobSet, GlobSetBuilder};
use ruma::{OwnedUserId, UserId};

use tokio::sync::Semaphore;

use crate::{
    appservice::Provisioner,
    bridge::Bridges,
    crypto::{Crypto, CryptoError},
    home::{Home, HomeError},
    matrix::{MatrixClient, MatrixError, TwinNaming},
    metrics::Metrics,
    negotiator::TwinLocks,
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

/// An open home and when it was last used.
struct OpenHome {
    home: Arc<Home>,
    last_used: Instant,
}

/// The directory of twins.
pub struct Twins {
    naming: TwinNaming,
    owners: GlobSet,
    store: Store,
    matrix: MatrixClient,
    crypto: Arc<Crypto>,
    metrics: Arc<Metrics>,
    home_dir: PathBuf,
    template: Option<PathBuf>,
    homes: Mutex<HashMap<OwnedUserId, OpenHome>>,
    /// One registration per owner at a time (others go on).
    registering: TwinLocks,
    /// Bounds the devices set up at once in the background.
    setting_up: Arc<Semaphore>,
    /// Bridges whose bots and ghosts never get twins.
    bridges: Arc<Bridges>,
}

impl std::fmt::Debug for Twins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Twins")
            .field("naming", &self.naming)
            .field("home_dir", &self.home_dir)
            .finish()
    }
}

/// A folder name for a localpart that can never be `..`, hidden, or contain `/`, and that is
/// different for different localparts (`.x` and `_.x` get different folders).
pub fn home_folder_name(localpart: &str) -> String {
    let mut out = String::with_capacity(localpart.len() + 2);
    for (i, c) in localpart.chars().enumerate() {
        let safe = c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '=' | '+');
        // A leading dot is encoded too: the name is never hidden, `.` or `..`.
        if safe && !(i == 0 && c == '.') {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02x}"));
            }
        }
    }
    out
}

impl Twins {
    /// A directory for `naming`'s server; `owner_globs` say who may have a twin; at most
    /// `setup_workers` twins get their device set up at once in the background.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        naming: TwinNaming,
        owner_globs: &[String],
        store: Store,
        matrix: MatrixClient,
        crypto: Arc<Crypto>,
        metrics: Arc<Metrics>,
        home_dir: &Path,
        template: Option<&Path>,
        setup_workers: usize,
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
            metrics,
            home_dir: home_dir.to_path_buf(),
            template: template.map(Path::to_path_buf),
            homes: Mutex::new(HashMap::new()),
            registering: TwinLocks::default(),
            setting_up: Arc::new(Semaphore::new(setup_workers.max(1))),
            bridges: Arc::default(),
        })
    }

    /// Twin naming in use.
    pub fn naming(&self) -> &TwinNaming {
        &self.naming
    }

    /// Never gives a twin to a bridge's bot or ghosts (nor takes one of their IDs for a twin),
    /// whatever `access.owners` says.
    pub fn excluding(mut self, bridges: Arc<Bridges>) -> Self {
        self.bridges = bridges;
        self
    }

    /// Whether `owner` may have a twin: a local user matching `access.owners`, and no bridge's
    /// bot or ghost (whose twin's ID would be in the bridge's namespace too).
    pub fn may_have_twin(&self, owner: &UserId) -> bool {
        owner.server_name().as_str() == self.naming.server_name()
            && !self.naming.is_twin(owner)
            && self.owners.is_match(owner.as_str())
            && !self.bridges.is_bridged_user(owner)
            && !self
                .naming
                .twin_of(owner)
                .is_some_and(|twin| self.bridges.is_bridged_user(&twin))
    }

    fn home_root(&self, owner: &UserId) -> PathBuf {
        self.home_dir.join(home_folder_name(owner.localpart()))
    }

    /// Opens (creating on first use) the owner's home.
    pub async fn home(&self, owner: &UserId) -> Result<Arc<Home>, TwinError> {
        if let Some(open) = self
            .homes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get_mut(owner)
        {
            open.last_used = Instant::now();
            return Ok(open.home.clone());
        }
        let root = self.home_root(owner);
        let template = self.template.clone();
        let owner_id = owner.to_string();
        let home = tokio::task::spawn_blocking(move || {
            Home::open_or_create(&root, template.as_deref(), &owner_id)
        })
        .await
        .map_err(|e| TwinError::Internal(e.to_string()))??;
        let mut homes = self
            .homes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let open = homes.entry(owner.to_owned()).or_insert(OpenHome {
            home: Arc::new(home),
            last_used: Instant::now(),
        });
        Ok(open.home.clone())
    }

    /// Forgets open homes idle for longer than `idle` that nobody holds.
    pub fn close_idle_homes(&self, idle: Duration) {
        self.homes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|_, open| open.last_used.elapsed() < idle || Arc::strong_count(&open.home) > 1);
    }

    async fn is_registered(&self, twin_id: &UserId) -> Result<bool, TwinError> {
        Ok(self
            .store
            .get_twin(twin_id)
            .await?
            .is_some_and(|row| row.registered))
    }

    /// Registers the twin's account (an existing one is fine), names it and records it.
    async fn register(&self, owner: &UserId, twin_id: &UserId) -> Result<(), TwinError> {
        let started = Instant::now();
        self.matrix.register_puppet(twin_id.localpart()).await?;
        let root = self.home_root(owner);
        let template = self.template.clone();
        let owner_id = owner.to_string();
        let display_name = tokio::task::spawn_blocking(move || {
            Home::display_name_at(&root, template.as_deref(), &owner_id)
        })
        .await
        .map_err(|e| TwinError::Internal(e.to_string()))??
        .unwrap_or_else(|| format!("{}'s AI", owner.localpart()));
        self.store
            .upsert_twin(&TwinRow {
                twin_id: twin_id.to_owned(),
                owner_id: owner.to_owned(),
                registered: true,
                display_name: Some(display_name),
            })
            .await?;
        self.metrics.twins_provisioned.inc();
        self.metrics
            .provision_duration
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(%twin_id, %owner, "twin registered");
        Ok(())
    }

    /// Sets the display name and makes sure the device exists and is the homeserver's (a new
    /// one when the homeserver no longer knows the stored one).
    async fn set_up(
        matrix: MatrixClient,
        crypto: Arc<Crypto>,
        twin_id: OwnedUserId,
        display_name: Option<String>,
    ) -> Result<(), TwinError> {
        if let Some(name) = display_name
            && let Err(err) = matrix.set_display_name(&twin_id, &name).await
        {
            tracing::warn!(%twin_id, %err, "could not set the twin's display name");
        }
        crypto.check_device(&twin_id).await?;
        crypto.ensure_device(&twin_id).await?;
        Ok(())
    }

    /// Makes the owner's twin exist: account registered, display name set, device and keys
    /// ready (before it joins anything, so people's clients share room keys with it from the
    /// first message), home opened (created on first use).
    pub async fn ensure(&self, owner: &UserId) -> Result<Twin, TwinError> {
        if !self.may_have_twin(owner) {
            return Err(TwinError::NotAllowed(owner.to_string()));
        }
        let twin_id = self
            .naming
            .twin_of(owner)
            .ok_or_else(|| TwinError::NotAllowed(owner.to_string()))?;
        if !self.is_registered(&twin_id).await? {
            let _one_at_a_time = self.registering.lock(&twin_id).await;
            if !self.is_registered(&twin_id).await? {
                if !self.owner_exists(owner).await? {
                    return Err(TwinError::NotAllowed(owner.to_string()));
                }
                self.register(owner, &twin_id).await?;
                let name = self.display_name_of(&twin_id).await?;
                Self::set_up(
                    self.matrix.clone(),
                    self.crypto.clone(),
                    twin_id.clone(),
                    name,
                )
                .await?;
            }
        }
        self.crypto.ensure_device(&twin_id).await?;
        let home = self.home(owner).await?;
        Ok(Twin {
            twin_id,
            owner_id: owner.to_owned(),
            home,
        })
    }

    /// Whether the owner has an account on the homeserver.
    async fn owner_exists(&self, owner: &UserId) -> Result<bool, TwinError> {
        Ok(self.matrix.user_exists(owner).await?)
    }

    async fn display_name_of(&self, twin_id: &UserId) -> Result<Option<String>, TwinError> {
        Ok(self
            .store
            .get_twin(twin_id)
            .await?
            .and_then(|row| row.display_name))
    }
}

#[async_trait]
impl Provisioner for Twins {
    /// The homeserver asks about a user it does not know: register the twin at once (the
    /// homeserver waits for that), and set its name and device up in the background, a few at
    /// a time, so that answering many queries never waits on each other or on transactions.
    async fn provision(&self, user_id: &UserId) -> anyhow::Result<bool> {
        let Some(owner) = self.naming.owner_of(user_id) else {
            return Ok(false);
        };
        if !self.may_have_twin(&owner) {
            return Ok(false);
        }
        // No account, home or device for an owner the homeserver does not know.
        if !self.is_registered(user_id).await? && !self.owner_exists(&owner).await? {
            tracing::info!(twin = %user_id, "no twin for an owner who does not exist");
            return Ok(false);
        }
        {
            let _one_at_a_time = self.registering.lock(user_id).await;
            // Registered before or not, the homeserver does not know the account now.
            self.register(&owner, user_id).await?;
        }
        // Named at once: the homeserver shows the profile it asked for (an invite dialog).
        if let Some(name) = self.display_name_of(user_id).await?
            && let Err(err) = self.matrix.set_display_name(user_id, &name).await
        {
            tracing::warn!(twin = %user_id, %err, "could not set the twin's display name");
        }
        let crypto = self.crypto.clone();
        let twin = user_id.to_owned();
        let permits = self.setting_up.clone();
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let ready = async {
                crypto.check_device(&twin).await?;
                crypto.ensure_device(&twin).await
            };
            if let Err(err) = ready.await {
                tracing::warn!(%twin, %err, "the twin's device could not be set up yet; it is when the twin first acts");
            }
        });
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
        assert_eq!(home_folder_name(".."), "%2e.");
        assert_eq!(home_folder_name("a/b"), "a%2fb");
        assert!(!home_folder_name(".hidden").starts_with('.'));
    }

    #[test]
    fn different_localparts_get_different_folders() {
        let names = [".x", "_.x", "%2ex", "x", "a/b", "a%2fb", "é", "_x"];
        let folders: std::collections::HashSet<String> =
            names.iter().map(|n| home_folder_name(n)).collect();
        assert_eq!(folders.len(), names.len(), "{folders:?}");
        assert_eq!(home_folder_name(".x"), "%2ex");
        assert_eq!(home_folder_name("_.x"), "_.x");
    }
}
