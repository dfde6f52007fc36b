//! Catching up on to-device messages the appservice transactions lost.
//!
//! Synapse pushes a twin's to-device messages (room keys among them) in appservice
//! transactions (MSC2409), best effort: a transaction it could not deliver (the service was
//! down or restarting) is retried with its events only, and its to-device messages are gone
//! from the push. They stay in the device's inbox on the homeserver, though, which `/sync` as
//! the device (MSC3202 device masquerading) reads. When an event's key is missing, the twin
//! reads that inbox (to-device only: every room, presence and account-data section filtered
//! out), at most once per [`CATCH_UP_EVERY`] per twin.

use std::time::{Duration, Instant};

use matrix_sdk_crypto::EncryptionSyncChanges;
use ruma::{
    UserId,
    api::client::{
        filter::FilterDefinition,
        sync::sync_events::{self, v3::Filter},
    },
    presence::PresenceState,
};

use super::{Crypto, CryptoError, RoomKeyArrived, decryption_settings, machine::TwinMachine};

/// At most one catch-up per twin in this time.
const CATCH_UP_EVERY: Duration = Duration::from_secs(10);
/// Pages of to-device messages read at once (Synapse gives 100 per page).
const MAX_PAGES: usize = 5;
/// The file beside the device's store that keeps where its inbox was read up to.
const SINCE_FILE: &str = "to-device-since";

impl Crypto {
    /// Reads the to-device messages the homeserver still holds for the twin's device and
    /// feeds them to its machine; returns the room keys that arrived. Nothing is read when the
    /// twin has no device or caught up a moment ago.
    pub async fn catch_up_to_device(
        &self,
        twin: &UserId,
    ) -> Result<Vec<RoomKeyArrived>, CryptoError> {
        let Some(machine) = self.machine(twin, false).await? else {
            return Ok(Vec::new());
        };
        {
            let mut last = machine
                .last_catch_up
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if last.is_some_and(|at| at.elapsed() < CATCH_UP_EVERY) {
                return Ok(Vec::new());
            }
            *last = Some(Instant::now());
        }
        let arrived = catch_up(&machine).await;
        drop(machine);
        match arrived {
            Err(err @ CryptoError::DeviceGone { .. }) => {
                tracing::warn!(%twin, %err, "the twin's device is gone; making a new one");
                self.heal(twin).await?;
                Ok(Vec::new())
            }
            other => other,
        }
    }
}

async fn catch_up(machine: &TwinMachine) -> Result<Vec<RoomKeyArrived>, CryptoError> {
    let since_file = machine.dir().join(SINCE_FILE);
    let mut since = tokio::fs::read_to_string(&since_file)
        .await
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let mut arrived = Vec::new();
    for _ in 0..MAX_PAGES {
        let mut request = sync_events::v3::Request::new();
        request.filter = Some(Filter::FilterDefinition(FilterDefinition::ignore_all()));
        request.since = since.clone();
        request.set_presence = PresenceState::Offline;
        request.timeout = Some(Duration::ZERO);
        let response = machine.send(request).await?;
        let messages = response.to_device.events.len();
        let changes = EncryptionSyncChanges {
            to_device_events: response.to_device.events,
            changed_devices: &response.device_lists,
            one_time_keys_counts: &response.device_one_time_keys_count,
            unused_fallback_keys: response.device_unused_fallback_key_types.as_deref(),
            next_batch_token: Some(response.next_batch.clone()),
        };
        let keys = {
            let _one_feed_at_a_time = machine.feed.lock().await;
            let (_, keys) = machine
                .olm
                .receive_sync_changes(changes, &decryption_settings())
                .await
                .map_err(|e| CryptoError::Olm(e.to_string()))?;
            keys
        };
        arrived.extend(keys.into_iter().map(|k| RoomKeyArrived {
            room_id: k.room_id,
            session_id: k.session_id,
        }));
        // Kept once fed: the next catch-up starts here (and the homeserver may drop what
        // came before).
        if let Err(err) = tokio::fs::write(&since_file, &response.next_batch).await {
            tracing::warn!(%err, "cannot keep where the twin's to-device inbox was read up to");
        }
        let done = messages == 0 || since.as_deref() == Some(response.next_batch.as_str());
        since = Some(response.next_batch);
        if done {
            break;
        }
    }
    if !arrived.is_empty() {
        tracing::info!(
            twin = %machine.user_id,
            keys = arrived.len(),
            "room keys the appservice transactions had lost were read from the homeserver"
        );
    }
    machine.pump().await?;
    Ok(arrived)
}
