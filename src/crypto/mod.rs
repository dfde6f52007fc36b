//! End-to-end encryption for twins: every twin has its own device and Olm machine, fed only by
//! what the homeserver pushes in appservice transactions (no /sync per twin).
//!
//! A twin's machine is opened when it has work ([`Crypto::receive`], [`Crypto::decrypt`],
//! [`Crypto::send_encrypted`]) and closed after `twins.idle_close_secs` without
//! ([`Crypto::close_idle`]). When the homeserver no longer knows a twin's device (an admin
//! deleted it, the homeserver's data was reset), [`Crypto::heal`] gives the twin a new one.

mod catch_up;
mod changes;
mod heal;
mod machine;
mod machines;
mod passphrase;
mod store_key;

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Instant,
};

use matrix_sdk_common::deserialized_responses::{VerificationLevel, VerificationState};
use matrix_sdk_crypto::{
    DecryptionSettings, EncryptionSettings, EncryptionSyncChanges, MegolmError, TrustRequirement,
    types::requests::{AnyOutgoingRequest, ToDeviceRequest},
};
use ruma::{
    OwnedDeviceId, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, TransactionId, UserId,
    api::client::{message::send_message_event, sync::sync_events::DeviceLists},
    events::{AnyMessageLikeEventContent, AnyTimelineEvent, MessageLikeEventType},
    serde::Raw,
    to_device::DeviceIdOrAllDevices,
};
use serde_json::Value;
use tokio::sync::mpsc;

pub use self::{
    changes::{CryptoChanges, DeviceListChanges, FallbackKeys, KeyCounts, ToDevice},
    passphrase::load_or_create_passphrase,
};
use self::{
    machine::{TwinMachine, stored_device, twin_dir},
    machines::Machines,
    store_key::StoreKeys,
};
use crate::{
    matrix::{MatrixClient, MatrixError},
    metrics::Metrics,
    secret::Secret,
    storage::Store,
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
    /// The homeserver does not know the twin's device (or the twin) any more.
    #[error("the homeserver does not know device {device}: {detail}")]
    DeviceGone {
        /// The device.
        device: String,
        /// What the homeserver said.
        detail: String,
    },
    /// The twin has no device and none is to be made here.
    #[error("the twin has no device yet")]
    NoDevice,
    /// A new device was made for the twin a short while ago and it is gone again: the twin
    /// waits instead of looping.
    #[error("not making another device so soon: {0}")]
    HealRefused(String),
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
    /// The room key has not arrived (yet), or only a later part of it: keep the event and
    /// retry when a key arrives.
    #[error("the room key for session {session_id} is missing")]
    MissingKey {
        /// Megolm session id of the event.
        session_id: String,
    },
    /// The event cannot be decrypted at all (malformed, unknown algorithm, ...).
    #[error("cannot decrypt: {0}")]
    Failed(String),
    /// The twin's machine could not be used now.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// How far the device that sent a decrypted event is vouched for by its user's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderTrust {
    /// The device is cross-signed by its user's identity (whether or not the twin verified
    /// that identity).
    CrossSigned,
    /// The user has no cross-signing identity (a "legacy" user), or the identity changed
    /// after it was verified.
    NotCrossSigned,
    /// The user has a cross-signing identity but it did not sign this device: a device the
    /// homeserver (or someone with the account's password) may have added.
    UnsignedDevice,
    /// The device is not known (its keys could not be linked to the session).
    UnknownDevice,
}

/// A decrypted event: the plaintext with the envelope's `room_id`, `sender`, `event_id` and
/// `origin_server_ts` (the homeserver's, never what the sender put in the plaintext), and how
/// far the sending device is vouched for.
#[derive(Debug, Clone)]
pub struct Decrypted {
    /// The event JSON.
    pub event: Value,
    /// The sending device's standing.
    pub sender_trust: SenderTrust,
}

/// A room key that arrived; events waiting for it can be retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomKeyArrived {
    /// Room.
    pub room_id: OwnedRoomId,
    /// Megolm session id.
    pub session_id: String,
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

fn decryption_settings() -> DecryptionSettings {
    // Humans' devices are rarely cross-signed by twins; refusing them would leave twins deaf.
    DecryptionSettings {
        sender_device_trust_requirement: TrustRequirement::Untrusted,
    }
}

/// All twins' crypto.
#[derive(Debug)]
pub struct Crypto {
    matrix: MatrixClient,
    root: PathBuf,
    keys: StoreKeys,
    machines: Machines,
    store: Store,
    metrics: Arc<Metrics>,
    /// When each twin last got a new device (no loops of replacements).
    heals: Mutex<HashMap<OwnedUserId, Instant>>,
    /// Twins that got a new device, for whoever tells their owners.
    healed: mpsc::UnboundedSender<OwnedUserId>,
    healed_rx: Mutex<Option<mpsc::UnboundedReceiver<OwnedUserId>>>,
}

impl Crypto {
    /// Crypto for twins whose stores live under `root` (one folder per twin and device),
    /// encrypted with `passphrase`; problems and owners' notices are kept in `store`.
    pub fn new(
        matrix: MatrixClient,
        root: &Path,
        passphrase: Secret,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (healed, healed_rx) = mpsc::unbounded_channel();
        Self {
            matrix,
            root: root.to_path_buf(),
            keys: StoreKeys::new(passphrase),
            machines: Machines::default(),
            store,
            metrics,
            heals: Mutex::new(HashMap::new()),
            healed,
            healed_rx: Mutex::new(Some(healed_rx)),
        }
    }

    /// The twins that got a new device (once: the first caller gets the receiver).
    pub fn healed_twins(&self) -> Option<mpsc::UnboundedReceiver<OwnedUserId>> {
        self.healed_rx
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// The twin's open machine, opening it (and, with `create`, making its device) when
    /// needed. `None`: the twin has no device and `create` is false.
    async fn machine(
        &self,
        twin: &UserId,
        create: bool,
    ) -> Result<Option<Arc<TwinMachine>>, CryptoError> {
        let slot = self.machines.slot(twin);
        let mut open = slot.machine.lock().await;
        if let Some(machine) = open.as_ref() {
            return Ok(Some(machine.clone()));
        }
        let dir = twin_dir(&self.root, twin);
        let machine = match stored_device(&dir).await {
            Some(device) => {
                TwinMachine::load(self.matrix.clone(), &dir, &self.keys, twin, device).await?
            }
            None if create => {
                TwinMachine::create(self.matrix.clone(), &dir, &self.keys, twin).await?
            }
            None => return Ok(None),
        };
        match machine.start().await {
            Ok(()) => {}
            Err(err @ CryptoError::DeviceGone { .. }) => {
                tracing::warn!(%twin, %err, "the twin's device is gone; making a new one");
                drop(machine);
                self.heal_locked(twin, &mut open, &err.to_string()).await?;
                return Ok(open.clone());
            }
            Err(err) => return Err(err),
        }
        let machine = Arc::new(machine);
        *open = Some(machine.clone());
        // It works again: whatever kept it from acting is over.
        if let Err(err) = self.store.clear_twin_problem(twin).await {
            tracing::warn!(%err, "cannot clear the twin's problem");
        }
        Ok(Some(machine))
    }

    /// Makes sure the twin has its device, keys and cross-signing; returns the device id.
    pub async fn ensure_device(&self, twin: &UserId) -> Result<OwnedDeviceId, CryptoError> {
        match self.machine(twin, true).await? {
            Some(machine) => Ok(machine.device_id().to_owned()),
            None => Err(CryptoError::NoDevice),
        }
    }

    /// Makes sure the homeserver still knows the twin's device (when it has one); a new one is
    /// made when it does not (its data was reset, an admin deleted the device).
    pub async fn check_device(&self, twin: &UserId) -> Result<(), CryptoError> {
        let Some(machine) = self.machine(twin, false).await? else {
            return Ok(());
        };
        if machine.device_exists().await? {
            return Ok(());
        }
        drop(machine);
        tracing::warn!(%twin, "the homeserver does not know the twin's device; making a new one");
        self.heal(twin).await
    }

    /// The twin's device as recorded, without opening anything.
    pub async fn device_id(&self, twin: &UserId) -> Option<OwnedDeviceId> {
        stored_device(&twin_dir(&self.root, twin)).await
    }

    /// Feeds one twin's share of a transaction's encryption data to its machine (opened if it
    /// has a device; a twin without one is skipped); returns the room keys that arrived.
    ///
    /// `to_device` are the messages addressed to this twin, for any of its devices: those for a
    /// device it no longer uses are dropped.
    pub async fn receive(
        &self,
        twin: &UserId,
        to_device: Vec<ToDevice>,
        changes: &CryptoChanges,
    ) -> Result<Vec<RoomKeyArrived>, CryptoError> {
        let addressed = !to_device.is_empty()
            || changes.one_time_keys.contains_key(twin)
            || changes.fallback_keys.contains_key(twin);
        let machine = if addressed {
            self.machine(twin, false).await?
        } else {
            // Only device-list news: not a reason to open a closed machine (it catches up when
            // it opens) nor to keep an open one open, and of interest only to a machine that
            // tracks a changed user (every call below copies the Olm account, one-time keys
            // and all, so skipping the many twins it does not concern keeps a busy
            // homeserver's transactions cheap).
            match self.machines.if_open(twin) {
                Some(machine) => {
                    let tracked = machine
                        .olm
                        .tracked_users()
                        .await
                        .map_err(|e| CryptoError::Store(e.to_string()))?;
                    let concerned = changes
                        .device_lists
                        .changed
                        .iter()
                        .chain(&changes.device_lists.left)
                        .any(|user| tracked.contains(user));
                    concerned.then_some(machine)
                }
                None => None,
            }
        };
        let Some(machine) = machine else {
            if !to_device.is_empty() {
                tracing::warn!(%twin, count = to_device.len(), "to-device messages for a twin without a device dropped");
            }
            return Ok(Vec::new());
        };
        let device = machine.device_id().to_owned();
        let (mine, stale): (Vec<ToDevice>, Vec<ToDevice>) =
            to_device.into_iter().partition(|m| m.device == device);
        if !stale.is_empty() {
            tracing::info!(%twin, count = stale.len(), "to-device messages for an earlier device dropped");
        }
        let counts = changes.one_time_keys_for(twin, &device).unwrap_or_default();
        let fallback = changes.fallback_keys_for(twin, &device);
        let mut device_lists = DeviceLists::new();
        device_lists.changed = changes.device_lists.changed.clone();
        device_lists.left = changes.device_lists.left.clone();
        let sync = EncryptionSyncChanges {
            to_device_events: mine.into_iter().map(|m| m.event).collect(),
            changed_devices: &device_lists,
            one_time_keys_counts: &counts,
            unused_fallback_keys: fallback.as_deref(),
            next_batch_token: None,
        };
        let (_, keys) = {
            let _one_feed_at_a_time = machine.feed.lock().await;
            machine
                .olm
                .receive_sync_changes(sync, &decryption_settings())
                .await
                .map_err(|e| CryptoError::Olm(e.to_string()))?
        };
        let arrived = keys
            .into_iter()
            .map(|k| RoomKeyArrived {
                room_id: k.room_id,
                session_id: k.session_id,
            })
            .collect();
        // The keys are stored now; what follows only sends.
        let own_change = changes.device_lists.changed.iter().any(|u| u == twin);
        let pumped = if own_change {
            match machine.device_exists().await {
                Ok(false) => Err(CryptoError::DeviceGone {
                    device: device.to_string(),
                    detail: "the device was removed".into(),
                }),
                _ => machine.pump().await,
            }
        } else {
            machine.pump().await
        };
        drop(machine);
        match pumped {
            Ok(()) => {}
            Err(err @ CryptoError::DeviceGone { .. }) => {
                tracing::warn!(%twin, %err, "the twin's device is gone; making a new one");
                if let Err(err) = self.heal(twin).await {
                    tracing::error!(%twin, %err, "the twin could not get a new device");
                }
            }
            Err(err) => {
                tracing::warn!(%twin, %err, "sending key requests failed; will retry with the next transaction")
            }
        }
        Ok(arrived)
    }

    /// Decrypts an `m.room.encrypted` event (as received) for `twin`; returns the decrypted
    /// event JSON with `room_id`, `sender` and `event_id` of the original.
    pub async fn decrypt(
        &self,
        twin: &UserId,
        room: &RoomId,
        raw: &Raw<AnyTimelineEvent>,
    ) -> Result<Decrypted, DecryptError> {
        let Some(machine) = self.machine(twin, false).await? else {
            return Err(DecryptError::Crypto(CryptoError::NoDevice));
        };
        let session_id = || {
            raw.get_field::<Value>("content")
                .ok()
                .flatten()
                .and_then(|c| {
                    c.get("session_id")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_default()
        };
        let sender = raw.get_field::<OwnedUserId>("sender").ok().flatten();
        let mut result = machine
            .olm
            .decrypt_room_event(&raw.clone().cast_unchecked(), room, &decryption_settings())
            .await;
        // The twin's own message, from its own device (its echo): nothing to judge.
        let own_echo =
            |decrypted: &matrix_sdk_common::deserialized_responses::DecryptedRoomEvent| {
                sender.as_deref() == Some(twin)
                    && decrypted.encryption_info.sender_device.as_deref()
                        == Some(machine.device_id())
            };
        // A device known only from the room key's own message, or not at all: fetch the
        // sender's keys (device and cross-signing identity) and look again, so the sender is
        // judged by what the homeserver publishes, not by what the twin happened to know.
        if let Ok(decrypted) = &result
            && !own_echo(decrypted)
            && matches!(
                decrypted.encryption_info.verification_state,
                VerificationState::Unverified(
                    VerificationLevel::UnsignedDevice | VerificationLevel::None(_)
                )
            )
            && let Some(sender) = &sender
        {
            let tracked = machine.olm.update_tracked_users([sender.as_ref()]).await;
            match tracked {
                Ok(()) => {
                    if let Err(err) = machine.pump().await {
                        tracing::debug!(%err, "cannot fetch the sender's keys");
                    }
                    result = machine
                        .olm
                        .decrypt_room_event(
                            &raw.clone().cast_unchecked(),
                            room,
                            &decryption_settings(),
                        )
                        .await;
                }
                Err(err) => tracing::debug!(%err, "cannot track the sender's keys"),
            }
        }
        match result {
            Ok(decrypted) => {
                let sender_trust = match &decrypted.encryption_info.verification_state {
                    _ if own_echo(&decrypted) => SenderTrust::CrossSigned,
                    VerificationState::Verified
                    | VerificationState::Unverified(VerificationLevel::UnverifiedIdentity) => {
                        SenderTrust::CrossSigned
                    }
                    VerificationState::Unverified(VerificationLevel::MismatchedSender) => {
                        // The session belongs to someone other than the envelope's sender.
                        return Err(DecryptError::Failed(
                            "the room key belongs to a different sender".into(),
                        ));
                    }
                    VerificationState::Unverified(VerificationLevel::None(_)) => {
                        SenderTrust::UnknownDevice
                    }
                    VerificationState::Unverified(VerificationLevel::UnsignedDevice) => {
                        let identity = match &sender {
                            Some(sender) => machine.olm.get_identity(sender, None).await,
                            None => Ok(None),
                        };
                        match identity {
                            Ok(None) => SenderTrust::NotCrossSigned,
                            // Fail closed: without the store's answer, assume the worst.
                            Ok(Some(_)) | Err(_) => SenderTrust::UnsignedDevice,
                        }
                    }
                    VerificationState::Unverified(_) => SenderTrust::NotCrossSigned,
                };
                let mut event: Value = serde_json::from_str(decrypted.event.json().get())
                    .map_err(|e| DecryptError::Failed(e.to_string()))?;
                let original: Value = serde_json::from_str(raw.json().get()).unwrap_or(Value::Null);
                let Value::Object(map) = &mut event else {
                    return Err(DecryptError::Failed(
                        "the plaintext is not an object".into(),
                    ));
                };
                // The homeserver's envelope decides who sent what where; a plaintext claiming
                // another sender must not be believed.
                for key in ["room_id", "sender", "event_id", "origin_server_ts"] {
                    match original.get(key) {
                        Some(value) => {
                            map.insert(key.to_owned(), value.clone());
                        }
                        None => {
                            map.remove(key);
                        }
                    }
                }
                map.remove("unsigned");
                Ok(Decrypted {
                    event,
                    sender_trust,
                })
            }
            Err(MegolmError::MissingRoomKey(_))
            | Err(MegolmError::Decryption(
                vodozemac::megolm::DecryptionError::UnknownMessageIndex(..),
            )) => Err(DecryptError::MissingKey {
                session_id: session_id(),
            }),
            Err(MegolmError::Store(err)) => {
                Err(DecryptError::Crypto(CryptoError::Store(err.to_string())))
            }
            Err(err) => Err(DecryptError::Failed(err.to_string())),
        }
    }

    /// Asks the sender's devices (and the twin's own) for the key of an undecryptable event.
    pub async fn request_key(
        &self,
        twin: &UserId,
        room: &RoomId,
        raw: &Raw<AnyTimelineEvent>,
    ) -> Result<(), CryptoError> {
        let Some(machine) = self.machine(twin, false).await? else {
            return Err(CryptoError::NoDevice);
        };
        let sender = raw.get_field::<OwnedUserId>("sender").ok().flatten();
        let (cancel, request) = machine
            .olm
            .request_room_key(&raw.clone().cast_unchecked(), room)
            .await
            .map_err(|e| CryptoError::Olm(e.to_string()))?;
        // The machine addresses key requests to the twin's own devices only, and a twin has
        // just the one device that lacks the key: the sender's devices are the ones that have it.
        let mut sent = Ok(());
        for outgoing in cancel.iter().chain([&request]) {
            let result = match (outgoing.request(), &sender) {
                (AnyOutgoingRequest::ToDeviceRequest(to_device), Some(sender)) => {
                    machine.send_to_device(&also_to(to_device, sender)).await
                }
                _ => machine.send_outgoing(outgoing).await,
            };
            if let Err(err) = result {
                sent = Err(err);
                break;
            }
        }
        drop(machine);
        if let Err(err @ CryptoError::DeviceGone { .. }) = &sent {
            tracing::warn!(%twin, %err, "the twin's device is gone; making a new one");
            return self.heal(twin).await;
        }
        sent
    }

    /// Encrypts and sends an event of `event_type` (custom types included) as `twin` into
    /// `room`, first sharing the room key with every device of `members`. Nothing is sent when
    /// any step fails. One attempt: the outbox retries.
    pub async fn send_encrypted(
        &self,
        twin: &UserId,
        room: &RoomId,
        members: &[OwnedUserId],
        event_type: &str,
        raw_content: &Raw<AnyMessageLikeEventContent>,
        txn_id: &TransactionId,
    ) -> Result<OwnedEventId, CryptoError> {
        let machine = self
            .machine(twin, true)
            .await?
            .ok_or(CryptoError::NoDevice)?;
        let _sharing = machine.share.lock().await;
        let olm_err = |e: &dyn std::fmt::Display| CryptoError::Olm(e.to_string());
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

    /// Twins whose machine is open now.
    pub fn open_twins(&self) -> Vec<OwnedUserId> {
        self.machines.open_twins()
    }

    /// How many machines are open.
    pub fn open_count(&self) -> usize {
        self.machines.open_count()
    }

    /// Closes machines idle for longer than `idle`; returns how many.
    pub fn close_idle(&self, idle: std::time::Duration) -> usize {
        self.machines.close_idle(idle)
    }
}

/// Compile-time guard: the futures room workers await must be `Send`.
#[cfg(test)]
#[allow(dead_code, clippy::too_many_arguments)]
fn futures_are_send(
    c: &Crypto,
    u: &UserId,
    r: &RoomId,
    m: &[OwnedUserId],
    content: &Raw<AnyMessageLikeEventContent>,
    t: &TransactionId,
    ch: &CryptoChanges,
    ev: &Raw<AnyTimelineEvent>,
) {
    fn is_send<T: Send>(_: T) {}
    is_send(c.send_encrypted(u, r, m, "m.room.message", content, t));
    is_send(c.receive(u, Vec::new(), ch));
    is_send(c.decrypt(u, r, ev));
    is_send(c.request_key(u, r, ev));
    is_send(c.ensure_device(u));
    is_send(c.heal(u));
}
