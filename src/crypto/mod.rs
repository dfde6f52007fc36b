//! End-to-end encryption for twins: every twin has its own device and Olm machine, fed only by
//! what the homeserver pushes in appservice transactions (no /sync per twin).
//!
//! Incoming: [`Crypto::receive`] takes a transaction's [`CryptoChanges`] (to-device messages,
//! device lists, key counts), [`Crypto::decrypt`] opens `m.room.encrypted` events.
//! Outgoing: [`Crypto::send_encrypted`] shares the room key with every member device and sends
//! the event encrypted, or sends nothing at all.

mod changes;
mod machine;
mod passphrase;

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use matrix_sdk_crypto::{
    DecryptionSettings, EncryptionSettings, EncryptionSyncChanges, MegolmError, TrustRequirement,
    types::requests::{AnyOutgoingRequest, ToDeviceRequest},
};
use ruma::{
    OwnedDeviceId, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, TransactionId, UserId,
    api::client::{message::send_message_event, sync::sync_events::DeviceLists},
    events::{AnyMessageLikeEventContent, AnyToDeviceEvent, MessageLikeEventType},
    serde::Raw,
    to_device::DeviceIdOrAllDevices,
};
use serde_json::Value;

use self::machine::TwinMachine;
pub use self::{
    changes::{CryptoChanges, DeviceListChanges, FallbackKeys, KeyCounts},
    passphrase::load_or_create_passphrase,
};
use crate::{
    matrix::{MatrixClient, MatrixError},
    secret::Secret,
};

/// An encryption operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The crypto store could not be opened or written.
    #[error("crypto store: {0}")]
    Store(String),
    /// The Olm/Megolm machine refused.
    #[error("encryption: {0}")]
    Olm(String),
    /// The homeserver refused a request made as the twin's device.
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    /// A file next to the store could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl CryptoError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Why an event could not be decrypted.
#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    /// The room key has not arrived (yet): keep the event and retry when it does.
    #[error("the room key for session {session_id} is missing")]
    MissingKey {
        /// Megolm session id of the event.
        session_id: String,
    },
    /// The event cannot be decrypted at all (malformed, unknown algorithm, ...).
    #[error("cannot decrypt: {0}")]
    Failed(String),
    /// The twin's machine could not be opened.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// A room key that arrived; events waiting for it can be retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomKeyArrived {
    /// Room.
    pub room_id: OwnedRoomId,
    /// Megolm session id.
    pub session_id: String,
}

/// Counters shown by `doctor` and `/health`.
#[derive(Debug, Default)]
pub struct CryptoHealth {
    /// Messages that were not sent because encrypting them failed.
    pub encryption_failures: AtomicU64,
    /// Transactions that carried encryption data (to-device messages, key counts, device
    /// lists) since start: zero while twins have devices means the homeserver does not send it.
    pub transactions_with_keys: AtomicU64,
}

/// `request` with the same message also sent to every device of `user`.
fn also_to(request: &ToDeviceRequest, user: &UserId) -> ToDeviceRequest {
    let mut request = request.clone();
    let content = request
        .messages
        .values()
        .flat_map(BTreeMap::values)
        .next()
        .cloned();
    if let Some(content) = content {
        request
            .messages
            .entry(user.to_owned())
            .or_default()
            .insert(DeviceIdOrAllDevices::AllDevices, content);
    }
    request
}

/// All twins' crypto.
#[derive(Debug)]
pub struct Crypto {
    matrix: MatrixClient,
    root: PathBuf,
    passphrase: Secret,
    machines: tokio::sync::Mutex<HashMap<OwnedUserId, Arc<TwinMachine>>>,
    /// Counters for health reporting.
    pub health: CryptoHealth,
}

fn decryption_settings() -> DecryptionSettings {
    // Humans' devices are rarely cross-signed by twins; refusing them would leave twins deaf.
    DecryptionSettings {
        sender_device_trust_requirement: TrustRequirement::Untrusted,
    }
}

impl Crypto {
    /// Crypto for twins whose stores live under `root` (one folder per twin and device),
    /// encrypted with `passphrase`.
    pub fn new(matrix: MatrixClient, root: &Path, passphrase: Secret) -> Self {
        Self {
            matrix,
            root: root.to_path_buf(),
            passphrase,
            machines: tokio::sync::Mutex::new(HashMap::new()),
            health: CryptoHealth::default(),
        }
    }

    async fn machine(&self, twin: &UserId) -> Result<Arc<TwinMachine>, CryptoError> {
        let mut machines = self.machines.lock().await;
        if let Some(machine) = machines.get(twin) {
            return Ok(machine.clone());
        }
        let machine =
            TwinMachine::open(self.matrix.clone(), &self.root, &self.passphrase, twin).await?;
        machines.insert(twin.to_owned(), machine.clone());
        Ok(machine)
    }

    /// Makes sure the twin has its device, keys and cross-signing; returns the device id.
    pub async fn ensure_device(&self, twin: &UserId) -> Result<OwnedDeviceId, CryptoError> {
        Ok(self.machine(twin).await?.device_id().to_owned())
    }

    /// Feeds one transaction's encryption data to the machines it concerns; returns the room
    /// keys that arrived.
    pub async fn receive(
        &self,
        changes: &CryptoChanges,
    ) -> Result<Vec<RoomKeyArrived>, CryptoError> {
        self.health
            .transactions_with_keys
            .fetch_add(1, Ordering::Relaxed);
        let mut to_device: BTreeMap<(OwnedUserId, OwnedDeviceId), Vec<Raw<AnyToDeviceEvent>>> =
            BTreeMap::new();
        for raw in &changes.to_device {
            let Ok(head) = serde_json::from_str::<Value>(raw.get()) else {
                continue;
            };
            let user = head
                .get("to_user_id")
                .and_then(Value::as_str)
                .and_then(|u| OwnedUserId::try_from(u).ok());
            let device = head
                .get("to_device_id")
                .and_then(Value::as_str)
                .map(OwnedDeviceId::from);
            let (Some(user), Some(device)) = (user, device) else {
                tracing::warn!("to-device message without to_user_id/to_device_id ignored");
                continue;
            };
            to_device
                .entry((user, device))
                .or_default()
                .push(Raw::from_json(raw.clone()));
        }
        // Machines that this transaction addresses, plus every loaded one for device lists.
        let mut twins: Vec<OwnedUserId> = to_device.keys().map(|(u, _)| u.clone()).collect();
        twins.extend(changes.one_time_keys.keys().cloned());
        twins.extend(changes.fallback_keys.keys().cloned());
        twins.extend(self.machines.lock().await.keys().cloned());
        twins.sort();
        twins.dedup();

        let mut device_lists = DeviceLists::new();
        device_lists.changed = changes.device_lists.changed.clone();
        device_lists.left = changes.device_lists.left.clone();
        let mut arrived = Vec::new();
        for twin in twins {
            let machine = match self.machine_if_known(&twin).await {
                Ok(Some(machine)) => machine,
                Ok(None) => continue,
                Err(err) => {
                    tracing::error!(%twin, %err, "cannot open the twin's crypto machine");
                    continue;
                }
            };
            let device = machine.device_id().to_owned();
            let events = to_device
                .remove(&(twin.clone(), device.clone()))
                .unwrap_or_default();
            let counts = changes
                .one_time_keys_for(&twin, &device)
                .unwrap_or_default();
            let fallback = changes.fallback_keys_for(&twin, &device);
            let sync = EncryptionSyncChanges {
                to_device_events: events,
                changed_devices: &device_lists,
                one_time_keys_counts: &counts,
                unused_fallback_keys: fallback.as_deref(),
                next_batch_token: None,
            };
            let (_, keys) = machine
                .olm
                .receive_sync_changes(sync, &decryption_settings())
                .await
                .map_err(|e| CryptoError::Olm(e.to_string()))?;
            arrived.extend(keys.into_iter().map(|k| RoomKeyArrived {
                room_id: k.room_id,
                session_id: k.session_id,
            }));
            if let Err(err) = machine.pump().await {
                tracing::warn!(%twin, %err, "sending key requests failed; will retry with the next transaction");
            }
        }
        for ((user, device), events) in to_device {
            tracing::warn!(%user, %device, count = events.len(), "to-device messages for an unknown device dropped");
        }
        Ok(arrived)
    }

    /// A machine for a twin that has a device already (never creates one for a stray id).
    async fn machine_if_known(
        &self,
        twin: &UserId,
    ) -> Result<Option<Arc<TwinMachine>>, CryptoError> {
        if let Some(machine) = self.machines.lock().await.get(twin) {
            return Ok(Some(machine.clone()));
        }
        let id_file = self
            .root
            .join(crate::twin::home_folder_name(twin.localpart()))
            .join("device_id");
        if !tokio::fs::try_exists(&id_file).await.unwrap_or(false) {
            return Ok(None);
        }
        self.machine(twin).await.map(Some)
    }

    /// Decrypts an `m.room.encrypted` event (JSON as received) for `twin`; returns the
    /// decrypted event JSON with `room_id`, `sender` and `event_id` of the original.
    pub async fn decrypt(
        &self,
        twin: &UserId,
        room: &RoomId,
        event_json: &str,
    ) -> Result<Value, DecryptError> {
        let machine = self.machine(twin).await?;
        let raw = Raw::from_json_string(event_json.to_owned())
            .map_err(|e| DecryptError::Failed(format!("not JSON: {e}")))?;
        match machine
            .olm
            .decrypt_room_event(&raw, room, &decryption_settings())
            .await
        {
            Ok(decrypted) => {
                let mut event: Value = serde_json::from_str(decrypted.event.json().get())
                    .map_err(|e| DecryptError::Failed(e.to_string()))?;
                let original: Value = serde_json::from_str(event_json).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut event {
                    for key in ["room_id", "sender", "event_id", "origin_server_ts"] {
                        if let Some(value) = original.get(key) {
                            map.entry(key).or_insert_with(|| value.clone());
                        }
                    }
                }
                Ok(event)
            }
            Err(MegolmError::MissingRoomKey(_)) => {
                let session_id = serde_json::from_str::<Value>(event_json)
                    .ok()
                    .and_then(|v| {
                        v.pointer("/content/session_id")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .unwrap_or_default();
                Err(DecryptError::MissingKey { session_id })
            }
            Err(err) => Err(DecryptError::Failed(err.to_string())),
        }
    }

    /// Asks the sender's devices (and the twin's own) for the key of an undecryptable event.
    pub async fn request_key(
        &self,
        twin: &UserId,
        room: &RoomId,
        event_json: &str,
    ) -> Result<(), CryptoError> {
        let machine = self.machine(twin).await?;
        let raw = Raw::from_json_string(event_json.to_owned())
            .map_err(|e| CryptoError::Olm(e.to_string()))?;
        let sender = serde_json::from_str::<Value>(event_json)
            .ok()
            .and_then(|v| v.get("sender")?.as_str()?.parse::<OwnedUserId>().ok());
        let (cancel, request) = machine
            .olm
            .request_room_key(&raw, room)
            .await
            .map_err(|e| CryptoError::Olm(e.to_string()))?;
        // The machine addresses key requests to the twin's own devices only, and a twin has
        // just the one device that lacks the key: the sender's devices are the ones that have it.
        for outgoing in cancel.iter().chain([&request]) {
            match (outgoing.request(), &sender) {
                (AnyOutgoingRequest::ToDeviceRequest(to_device), Some(sender)) => {
                    machine.send_to_device(&also_to(to_device, sender)).await?
                }
                _ => machine.send_outgoing(outgoing).await?,
            }
        }
        Ok(())
    }

    /// Encrypts and sends an event of `event_type` (custom types included) as `twin` into
    /// `room`, first sharing the room key with every device of `members`. Nothing is sent when
    /// any step fails.
    pub async fn send_encrypted(
        &self,
        twin: &UserId,
        room: &RoomId,
        members: &[OwnedUserId],
        event_type: &str,
        content: &Raw<AnyMessageLikeEventContent>,
        txn_id: &TransactionId,
    ) -> Result<OwnedEventId, CryptoError> {
        let result = self
            .try_send_encrypted(twin, room, members, event_type, content, txn_id)
            .await;
        if result.is_err() {
            self.health
                .encryption_failures
                .fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn try_send_encrypted(
        &self,
        twin: &UserId,
        room: &RoomId,
        members: &[OwnedUserId],
        event_type: &str,
        raw_content: &Raw<AnyMessageLikeEventContent>,
        txn_id: &TransactionId,
    ) -> Result<OwnedEventId, CryptoError> {
        let machine = self.machine(twin).await?;
        let _sharing = machine.share.lock().await;
        let olm_err = |e: &dyn std::fmt::Display| CryptoError::Olm(e.to_string());
        // A named function, not a closure: with a closure the future is not provably `Send`.
        let users = || members.iter().map(std::ops::Deref::deref);
        machine
            .olm
            .update_tracked_users(users())
            .await
            .map_err(|e| olm_err(&e))?;
        // Device keys of new or changed members.
        machine.pump().await?;
        if let Some((request_id, claim)) = machine
            .olm
            .get_missing_sessions(users())
            .await
            .map_err(|e| olm_err(&e))?
        {
            let response = machine.send(claim).await?;
            machine
                .olm
                .mark_request_as_sent(&request_id, &response)
                .await
                .map_err(|e| olm_err(&e))?;
        }
        let shares = machine
            .olm
            .share_room_key(room, users(), EncryptionSettings::default())
            .await
            .map_err(|e| olm_err(&e))?;
        for share in shares {
            machine.send_to_device(&share).await?;
        }
        let encrypted = machine
            .olm
            .encrypt_room_event_raw(room, event_type, raw_content)
            .await
            .map_err(|e| olm_err(&e))?;
        let request = send_message_event::v3::Request::new_raw(
            room.to_owned(),
            txn_id.to_owned(),
            MessageLikeEventType::RoomEncrypted,
            encrypted.content.cast(),
        );
        Ok(machine.send(request).await?.event_id)
    }
}

/// Compile-time guard: the futures room workers await must be `Send`.
#[cfg(test)]
#[allow(dead_code)]
fn futures_are_send(
    c: &Crypto,
    u: &UserId,
    r: &RoomId,
    m: &[OwnedUserId],
    content: &Raw<AnyMessageLikeEventContent>,
    t: &TransactionId,
    ch: &CryptoChanges,
) {
    fn is_send<T: Send>(_: T) {}
    is_send(c.send_encrypted(u, r, m, "m.room.message", content, t));
    is_send(c.receive(ch));
    is_send(c.decrypt(u, r, ""));
    is_send(c.request_key(u, r, ""));
    is_send(c.ensure_device(u));
}
