//! One twin's Olm machine: its device on the homeserver, its persistent crypto store, and the
//! pump that sends every request the machine emits as that device.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use matrix_sdk_crypto::{
    OlmMachine,
    types::requests::{AnyOutgoingRequest, OutgoingRequest, ToDeviceRequest},
};
use matrix_sdk_sqlite::SqliteCryptoStore;
use ruma::{
    DeviceId, OwnedDeviceId, OwnedUserId, UserId,
    api::{
        IncomingResponse, OutgoingRequest as RumaOutgoingRequest,
        auth_scheme::{AuthScheme, SendAccessToken},
        client::{
            device::update_device,
            keys::{get_keys, upload_signing_keys},
            to_device::send_event_to_device,
        },
        path_builder::VersionHistory,
    },
};

use super::CryptoError;
use crate::{
    matrix::{MatrixClient, RetryPolicy},
    secret::Secret,
};

/// Display name of every twin's device, as Element shows it in the session list.
const DEVICE_NAME: &str = "matrix-os twin";
/// Marker written once the cross-signing keys are on the homeserver.
const CROSS_SIGNED_MARKER: &str = "cross-signing-uploaded";

/// A twin's crypto state.
#[derive(Debug)]
pub(crate) struct TwinMachine {
    pub(crate) user_id: OwnedUserId,
    pub(crate) device_id: OwnedDeviceId,
    pub(crate) olm: OlmMachine,
    dir: PathBuf,
    matrix: MatrixClient,
    /// One pump at a time: two would send the same request twice.
    pump: tokio::sync::Mutex<()>,
    /// One room-key share at a time per twin.
    pub(crate) share: tokio::sync::Mutex<()>,
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

impl TwinMachine {
    /// Opens the twin's machine under `root`, creating its device (MSC4190) and uploading its
    /// keys and cross-signing identity the first time.
    pub(crate) async fn open(
        matrix: MatrixClient,
        root: &Path,
        passphrase: &Secret,
        user_id: &UserId,
    ) -> Result<Arc<Self>, CryptoError> {
        let twin_dir = root.join(crate::twin::home_folder_name(user_id.localpart()));
        tokio::fs::create_dir_all(&twin_dir)
            .await
            .map_err(|e| CryptoError::io(&twin_dir, e))?;
        let id_file = twin_dir.join("device_id");
        let device_id = match tokio::fs::read_to_string(&id_file).await {
            Ok(id) if !id.trim().is_empty() => OwnedDeviceId::from(id.trim()),
            _ => {
                let device_id = random_device_id();
                // The device must exist before the homeserver accepts requests made as it.
                let mut request = update_device::v3::Request::new(device_id.clone());
                request.display_name = Some(DEVICE_NAME.to_owned());
                matrix.send(request, Some(user_id)).await?;
                tokio::fs::write(&id_file, device_id.as_str())
                    .await
                    .map_err(|e| CryptoError::io(&id_file, e))?;
                tracing::info!(twin = %user_id, device = %device_id, "created the twin's device");
                device_id
            }
        };
        let dir = twin_dir.join(device_id.as_str());
        let store = SqliteCryptoStore::open(&dir, Some(passphrase.expose()))
            .await
            .map_err(|e| CryptoError::Store(format!("crypto store {}: {e}", dir.display())))?;
        let olm = OlmMachine::with_store(user_id, &device_id, store, None)
            .await
            .map_err(|e| CryptoError::Store(e.to_string()))?;
        // Device lists may have changed while this machine was not loaded.
        olm.mark_all_tracked_users_as_dirty()
            .await
            .map_err(|e| CryptoError::Store(e.to_string()))?;
        let machine = Arc::new(Self {
            user_id: user_id.to_owned(),
            device_id,
            olm,
            dir,
            matrix,
            pump: tokio::sync::Mutex::new(()),
            share: tokio::sync::Mutex::new(()),
        });
        machine.pump().await?;
        machine.ensure_cross_signing().await?;
        Ok(machine)
    }

    /// Sends a request as this twin's device.
    pub(crate) async fn send<R>(&self, request: R) -> Result<R::IncomingResponse, CryptoError>
    where
        R: RumaOutgoingRequest<PathBuilder = VersionHistory> + Clone,
        R::IncomingResponse: IncomingResponse,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        Ok(self
            .matrix
            .send_as_device(
                request,
                Some(&self.user_id),
                Some(&self.device_id),
                RetryPolicy::default(),
            )
            .await?)
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

    /// Creates the twin's cross-signing identity and signs its own device, once, so clients
    /// see the twin's messages as coming from a device verified by its user.
    async fn ensure_cross_signing(&self) -> Result<(), CryptoError> {
        let marker = self.dir.join(CROSS_SIGNED_MARKER);
        if tokio::fs::try_exists(&marker).await.unwrap_or(false) {
            return Ok(());
        }
        let requests = self
            .olm
            .bootstrap_cross_signing(false)
            .await
            .map_err(|e| CryptoError::Store(e.to_string()))?;
        if let Some(upload_keys) = requests.upload_keys_req {
            self.send_outgoing(&upload_keys).await?;
        }
        let signing = requests.upload_signing_keys_req;
        let mut upload = upload_signing_keys::v3::Request::new();
        upload.master_key = signing.master_key.map(|k| k.to_raw());
        upload.self_signing_key = signing.self_signing_key.map(|k| k.to_raw());
        upload.user_signing_key = signing.user_signing_key.map(|k| k.to_raw());
        self.send(upload).await?;
        self.send(requests.upload_signatures_req).await?;
        tokio::fs::write(&marker, b"")
            .await
            .map_err(|e| CryptoError::io(&marker, e))?;
        tracing::info!(twin = %self.user_id, "cross-signing set up; the twin's device is signed");
        Ok(())
    }

    /// The twin's device id.
    pub(crate) fn device_id(&self) -> &DeviceId {
        &self.device_id
    }
}
