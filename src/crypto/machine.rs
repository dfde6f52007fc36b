//! One twin's Olm machine: its device on the homeserver, its persistent crypto store, and the
//! pump that sends every request the machine emits as that device.
//!
//! Every request goes out once: the stage that asked (the outbox, the crypto intake, the
//! provisioning worker) decides whether to try again, so retries never nest.

use std::path::{Path, PathBuf};

use matrix_sdk_crypto::{
    OlmMachine,
    store::types::CrossSigningKeyExport,
    types::requests::{AnyOutgoingRequest, OutgoingRequest, ToDeviceRequest},
};
use matrix_sdk_sqlite::{SqliteCryptoStore, SqliteStoreConfig};
use ruma::{
    DeviceId, OwnedDeviceId, OwnedUserId, UserId,
    api::{
        IncomingResponse, OutgoingRequest as RumaOutgoingRequest,
        auth_scheme::{AuthScheme, SendAccessToken},
        client::{
            device::{get_device, update_device},
            keys::{get_keys, upload_signing_keys},
            to_device::send_event_to_device,
        },
        path_builder::VersionHistory,
    },
};

use super::{
    CryptoError,
    store_key::{StoreKeys, StoreSecret},
};
use crate::matrix::{MatrixClient, MatrixError, RetryPolicy};

/// Display name of every twin's device, as Element shows it in the session list.
const DEVICE_NAME: &str = "matrix-os twin";
/// Marker written once the cross-signing keys are on the homeserver.
const CROSS_SIGNED_MARKER: &str = "cross-signing-uploaded";
/// The file beside a twin's stores that names its current device.
const DEVICE_ID_FILE: &str = "device_id";
/// The crypto store's database file (matrix-sdk-sqlite's name for it).
const STORE_FILE: &str = "matrix-sdk-crypto.sqlite3";
/// Page size of a new crypto store: most of a fresh store is one page per table and index,
/// so small pages keep an idle twin's store small.
const STORE_PAGE_SIZE: u32 = 1024;

/// A twin's crypto state.
#[derive(Debug)]
pub(crate) struct TwinMachine {
    pub(crate) user_id: OwnedUserId,
    pub(crate) device_id: OwnedDeviceId,
    pub(crate) olm: OlmMachine,
    /// The machine's store, kept to close its SQLite connections (dropping the machine does
    /// not: the write-ahead log and the file handles would stay).
    store: SqliteCryptoStore,
    dir: PathBuf,
    matrix: MatrixClient,
    /// One pump at a time: two would send the same request twice.
    pump: tokio::sync::Mutex<()>,
    /// One room-key share at a time per twin.
    pub(crate) share: tokio::sync::Mutex<()>,
    /// One batch of to-device messages fed at a time (a transaction's, or a catch-up's).
    pub(crate) feed: tokio::sync::Mutex<()>,
    /// When the twin last read its to-device inbox from the homeserver.
    pub(crate) last_catch_up: std::sync::Mutex<Option<std::time::Instant>>,
}

impl TwinMachine {
    /// The folder of this device's store.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Closes the store's connections (checkpointing its write-ahead log away). The machine
    /// must not be used afterwards.
    pub(crate) async fn close(&self) {
        use matrix_sdk_crypto::store::CryptoStore;
        if let Err(err) = self.store.close().await {
            tracing::warn!(twin = %self.user_id, %err, "cannot close a twin's crypto store");
        }
    }
}

fn random_device_id() -> OwnedDeviceId {
    use rand::{Rng, distributions::Uniform};
    let letters: String = rand::rngs::OsRng
        .sample_iter(Uniform::from(b'A'..=b'Z'))
        .take(10)
        .map(char::from)
        .collect();
    OwnedDeviceId::from(format!("MXOS{letters}"))
}

/// The folder of a twin's crypto stores (one sub-folder per device it ever had).
pub(crate) fn twin_dir(root: &Path, twin: &UserId) -> PathBuf {
    root.join(crate::twin::home_folder_name(twin.localpart()))
}

/// The device the twin uses now, as recorded beside its stores.
pub(crate) async fn stored_device(twin_dir: &Path) -> Option<OwnedDeviceId> {
    match tokio::fs::read_to_string(twin_dir.join(DEVICE_ID_FILE)).await {
        Ok(id) if !id.trim().is_empty() => Some(OwnedDeviceId::from(id.trim())),
        _ => None,
    }
}

/// Whether the homeserver said that `user`'s device, or `user` itself, does not exist.
pub(crate) fn is_gone(err: &MatrixError) -> bool {
    match err {
        MatrixError::Api {
            errcode, message, ..
        } => {
            errcode == "M_UNKNOWN_DEVICE"
                || message.contains("device that doesn't exist")
                || message.contains("has not registered this user")
        }
        _ => false,
    }
}

/// Creates the store file with small pages before matrix-sdk-sqlite creates its tables.
async fn create_small_store(dir: &Path) -> Result<(), CryptoError> {
    use sqlx::{ConnectOptions, Connection, Executor, sqlite::SqliteConnectOptions};
    let file = dir.join(STORE_FILE);
    if tokio::fs::try_exists(&file).await.unwrap_or(false) {
        return Ok(());
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(&file)
        .create_if_missing(true)
        .connect()
        .await
        .map_err(|e| CryptoError::Store(format!("crypto store {}: {e}", file.display())))?;
    let pragma = format!("PRAGMA page_size = {STORE_PAGE_SIZE}; VACUUM;");
    conn.execute(sqlx::AssertSqlSafe(pragma))
        .await
        .map_err(|e| CryptoError::Store(format!("crypto store {}: {e}", file.display())))?;
    // Closed explicitly, so the file is not left open by a connection's background worker.
    conn.close()
        .await
        .map_err(|e| CryptoError::Store(format!("crypto store {}: {e}", file.display())))?;
    Ok(())
}

impl TwinMachine {
    /// Opens the twin's existing store for `device`, without any network call.
    pub(crate) async fn load(
        matrix: MatrixClient,
        twin_dir: &Path,
        keys: &StoreKeys,
        user_id: &UserId,
        device_id: OwnedDeviceId,
    ) -> Result<Self, CryptoError> {
        let dir = twin_dir.join(device_id.as_str());
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| CryptoError::io(&dir, e))?;
        restrict(&dir).await;
        let secret = keys
            .secret_for(&dir, &dir.join(STORE_FILE), user_id, &device_id)
            .await
            .map_err(|e| CryptoError::io(&dir, e))?;
        create_small_store(&dir).await?;
        let config = SqliteStoreConfig::with_low_memory_config(&dir).pool_max_size(2);
        let config = match &secret {
            StoreSecret::Key(key) => config.key(Some(key)),
            StoreSecret::Passphrase(passphrase) => config.passphrase(Some(passphrase.expose())),
        };
        let store = SqliteCryptoStore::open_with_config(&config)
            .await
            .map_err(|e| CryptoError::Store(format!("crypto store {}: {e}", dir.display())))?;
        let olm = OlmMachine::with_store(user_id, &device_id, store.clone(), None)
            .await
            .map_err(|e| CryptoError::Store(e.to_string()))?;
        Ok(Self {
            user_id: user_id.to_owned(),
            device_id,
            olm,
            store,
            dir,
            matrix,
            pump: tokio::sync::Mutex::new(()),
            share: tokio::sync::Mutex::new(()),
            feed: tokio::sync::Mutex::new(()),
            last_catch_up: std::sync::Mutex::new(None),
        })
    }

    /// Creates a new device for the twin on the homeserver (MSC4190) and its store, and records
    /// it as the twin's current device.
    pub(crate) async fn create(
        matrix: MatrixClient,
        twin_dir: &Path,
        keys: &StoreKeys,
        user_id: &UserId,
    ) -> Result<Self, CryptoError> {
        tokio::fs::create_dir_all(twin_dir)
            .await
            .map_err(|e| CryptoError::io(twin_dir, e))?;
        restrict(twin_dir).await;
        let device_id = random_device_id();
        // The device must exist before the homeserver accepts requests made as it.
        let mut request = update_device::v3::Request::new(device_id.clone());
        request.display_name = Some(DEVICE_NAME.to_owned());
        matrix
            .send_with(request, Some(user_id), RetryPolicy::once())
            .await?;
        let machine = Self::load(matrix, twin_dir, keys, user_id, device_id).await?;
        let id_file = twin_dir.join(DEVICE_ID_FILE);
        tokio::fs::write(&id_file, machine.device_id.as_str())
            .await
            .map_err(|e| CryptoError::io(&id_file, e))?;
        tracing::info!(twin = %user_id, device = %machine.device_id, "created the twin's device");
        Ok(machine)
    }

    /// Brings the machine up to date with the homeserver: device lists, keys uploaded,
    /// cross-signing set up, and the device's keys on the homeserver checked against ours.
    pub(crate) async fn start(&self) -> Result<(), CryptoError> {
        // Device lists may have changed while this machine was closed.
        self.olm
            .mark_all_tracked_users_as_dirty()
            .await
            .map_err(|e| CryptoError::Store(e.to_string()))?;
        self.pump().await?;
        self.ensure_cross_signing().await?;
        self.check_server_keys().await
    }

    /// Sends a request as this twin's device, once.
    pub(crate) async fn send<R>(&self, request: R) -> Result<R::IncomingResponse, CryptoError>
    where
        R: RumaOutgoingRequest<PathBuilder = VersionHistory> + Clone,
        R::IncomingResponse: IncomingResponse,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        self.matrix
            .send_as_device(
                request,
                Some(&self.user_id),
                Some(&self.device_id),
                RetryPolicy::once(),
            )
            .await
            .map_err(|err| {
                if is_gone(&err) {
                    CryptoError::DeviceGone {
                        device: self.device_id.to_string(),
                        detail: err.to_string(),
                    }
                } else {
                    CryptoError::Matrix(err)
                }
            })
    }

    /// Sends every request the machine has queued (keys upload/query/claim, to-device,
    /// signatures) until it has none left.
    pub(crate) async fn pump(&self) -> Result<(), CryptoError> {
        let _one_at_a_time = self.pump.lock().await;
        // Answering a request can queue new ones (e.g. more one-time keys); a few rounds settle.
        for _ in 0..4 {
            let requests = self
                .olm
                .outgoing_requests()
                .await
                .map_err(|e| CryptoError::Store(e.to_string()))?;
            if requests.is_empty() {
                return Ok(());
            }
            for request in requests {
                self.send_outgoing(&request).await?;
            }
        }
        Ok(())
    }

    /// Sends one request and feeds the answer back to the machine.
    pub(crate) async fn send_outgoing(&self, request: &OutgoingRequest) -> Result<(), CryptoError> {
        let id = request.request_id();
        let olm_err = |e: matrix_sdk_crypto::OlmError| CryptoError::Olm(e.to_string());
        match request.request() {
            AnyOutgoingRequest::KeysUpload(upload) => {
                let response = self.send(upload.clone()).await?;
                self.olm
                    .mark_request_as_sent(id, &response)
                    .await
                    .map_err(olm_err)?;
            }
            AnyOutgoingRequest::KeysQuery(query) => {
                let mut request = get_keys::v3::Request::new();
                request.device_keys = query.device_keys.clone();
                let response = self.send(request).await?;
                self.olm
                    .mark_request_as_sent(id, &response)
                    .await
                    .map_err(olm_err)?;
            }
            AnyOutgoingRequest::KeysClaim(claim) => {
                let response = self.send(claim.clone()).await?;
                self.olm
                    .mark_request_as_sent(id, &response)
                    .await
                    .map_err(olm_err)?;
            }
            AnyOutgoingRequest::ToDeviceRequest(to_device) => {
                self.send_to_device(to_device).await?
            }
            AnyOutgoingRequest::SignatureUpload(signatures) => {
                let response = self.send(signatures.clone()).await?;
                self.olm
                    .mark_request_as_sent(id, &response)
                    .await
                    .map_err(olm_err)?;
            }
            AnyOutgoingRequest::RoomMessage(_) => {
                // In-room verification: twins do not verify interactively.
                tracing::debug!(twin = %self.user_id, "ignoring an in-room verification request");
            }
        }
        Ok(())
    }

    /// Sends one to-device request and marks it sent.
    pub(crate) async fn send_to_device(
        &self,
        request: &ToDeviceRequest,
    ) -> Result<(), CryptoError> {
        let ruma_request = send_event_to_device::v3::Request::new_raw(
            request.event_type.clone(),
            request.txn_id.clone(),
            request.messages.clone(),
        );
        let response = self.send(ruma_request).await?;
        self.olm
            .mark_request_as_sent(&request.txn_id, &response)
            .await
            .map_err(|e| CryptoError::Olm(e.to_string()))
    }

    /// Creates the twin's cross-signing identity (or uploads the one imported into this
    /// machine) and signs its own device, once per device, so clients see the device as
    /// cross-signed by its user.
    async fn ensure_cross_signing(&self) -> Result<(), CryptoError> {
        let marker = self.dir.join(CROSS_SIGNED_MARKER);
        if tokio::fs::try_exists(&marker).await.unwrap_or(false) {
            return Ok(());
        }
        // An identity carried over from an earlier device is on the homeserver already (the
        // import marks it verified only when the homeserver's keys are ours): only the new
        // device's signature goes up.
        let on_server = match self.olm.get_identity(&self.user_id, None).await {
            Ok(Some(identity)) => identity.own().is_some_and(|own| own.is_verified()),
            _ => false,
        };
        let requests = self
            .olm
            .bootstrap_cross_signing(false)
            .await
            .map_err(|e| CryptoError::Store(e.to_string()))?;
        if let Some(upload_keys) = requests.upload_keys_req {
            self.send_outgoing(&upload_keys).await?;
        }
        if !on_server {
            let signing = requests.upload_signing_keys_req;
            let mut upload = upload_signing_keys::v3::Request::new();
            upload.master_key = signing.master_key.map(|k| k.to_raw());
            upload.self_signing_key = signing.self_signing_key.map(|k| k.to_raw());
            upload.user_signing_key = signing.user_signing_key.map(|k| k.to_raw());
            self.send(upload).await?;
        }
        let signed = self.send(requests.upload_signatures_req).await?;
        if !signed.failures.is_empty() {
            return Err(CryptoError::Olm(format!(
                "the homeserver refused the device's signature: {:?}",
                signed.failures
            )));
        }
        tokio::fs::write(&marker, b"")
            .await
            .map_err(|e| CryptoError::io(&marker, e))?;
        tracing::info!(twin = %self.user_id, device = %self.device_id, "the twin's device is cross-signed by its identity");
        Ok(())
    }

    /// Fails with [`CryptoError::DeviceGone`] when the homeserver holds other keys for this
    /// device than the machine's (or none): the homeserver's data was reset or replaced.
    async fn check_server_keys(&self) -> Result<(), CryptoError> {
        let mut request = get_keys::v3::Request::new();
        request
            .device_keys
            .insert(self.user_id.clone(), vec![self.device_id.clone()]);
        let response = self.send(request).await?;
        let ours = self.olm.identity_keys().ed25519.to_base64();
        let key_id = format!("ed25519:{}", self.device_id);
        let theirs = response
            .device_keys
            .get(&self.user_id)
            .and_then(|devices| devices.get(&self.device_id))
            .and_then(|raw| raw.get_field::<serde_json::Value>("keys").ok().flatten())
            .and_then(|keys| {
                keys.get(&key_id)
                    .and_then(|k| k.as_str())
                    .map(str::to_owned)
            });
        if theirs.as_deref() == Some(ours.as_str()) {
            return Ok(());
        }
        Err(CryptoError::DeviceGone {
            device: self.device_id.to_string(),
            detail: match theirs {
                Some(_) => "the homeserver holds other keys for this device".into(),
                None => "the homeserver holds no keys for this device".into(),
            },
        })
    }

    /// Whether the homeserver still knows this device.
    pub(crate) async fn device_exists(&self) -> Result<bool, CryptoError> {
        let request = get_device::v3::Request::new(self.device_id.clone());
        match self
            .matrix
            .send_with(request, Some(&self.user_id), RetryPolicy::once())
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if err.errcode() == Some("M_NOT_FOUND") || is_gone(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// The private cross-signing keys, to carry the twin's identity over to a new device.
    pub(crate) async fn export_cross_signing(&self) -> Option<CrossSigningKeyExport> {
        self.olm.export_cross_signing_keys().await.ok().flatten()
    }

    /// Takes over the twin's identity from an earlier device.
    pub(crate) async fn import_cross_signing(
        &self,
        export: CrossSigningKeyExport,
    ) -> Result<(), CryptoError> {
        self.olm
            .import_cross_signing_keys(export)
            .await
            .map(|_| ())
            .map_err(|e| CryptoError::Olm(e.to_string()))
    }

    /// The twin's device id.
    pub(crate) fn device_id(&self) -> &DeviceId {
        &self.device_id
    }
}

/// Makes a folder readable by its owner only (it holds keys).
async fn restrict(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(err) =
            tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).await
        {
            tracing::warn!(dir = %dir.display(), %err, "cannot restrict the crypto folder");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn api(status: u16, errcode: &str, message: &str) -> MatrixError {
        MatrixError::Api {
            status,
            errcode: errcode.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    #[test]
    fn a_lost_device_or_account_is_told_apart_from_other_refusals() {
        assert!(is_gone(&api(400, "M_UNKNOWN_DEVICE", "no such device")));
        assert!(is_gone(&api(
            400,
            "M_UNKNOWN",
            "Application service trying to use a device that doesn't exist ('X' for @a)"
        )));
        assert!(is_gone(&api(
            403,
            "M_FORBIDDEN",
            "Application service has not registered this user (@a_ai:x)"
        )));
        assert!(!is_gone(&api(403, "M_FORBIDDEN", "User not in room")));
        assert!(!is_gone(&api(502, "M_UNKNOWN", "bad gateway")));
        assert!(!is_gone(&MatrixError::Protocol("x".into())));
    }

    #[test]
    fn device_ids_are_ours_and_random() {
        let a = random_device_id();
        assert!(a.as_str().starts_with("MXOS") && a.as_str().len() == 14);
        assert_ne!(a, random_device_id());
    }
}
