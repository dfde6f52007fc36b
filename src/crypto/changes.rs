//! The encryption data a homeserver pushes in appservice transactions (MSC2409 to-device
//! messages, MSC3202 device lists, one-time-key counts and unused fallback key types), kept as
//! one JSON document in the inbox so it survives a crash like the events do.

use std::collections::BTreeMap;

use ruma::{
    OneTimeKeyAlgorithm, OwnedDeviceId, OwnedUserId, UInt, events::AnyToDeviceEvent, serde::Raw,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One-time-key counts per user, device and algorithm.
pub type KeyCounts =
    BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, BTreeMap<OneTimeKeyAlgorithm, UInt>>>;
/// Unused fallback key types per user and device.
pub type FallbackKeys = BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, Vec<OneTimeKeyAlgorithm>>>;

/// Users whose devices changed or who no longer share a room with any twin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceListChanges {
    /// Users whose device list changed.
    #[serde(default)]
    pub changed: Vec<OwnedUserId>,
    /// Users who left every room shared with a twin.
    #[serde(default)]
    pub left: Vec<OwnedUserId>,
}

/// Encryption data of one transaction.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CryptoChanges {
    /// To-device events, each with `to_user_id` and `to_device_id`.
    #[serde(default)]
    pub to_device: Vec<Box<RawValue>>,
    /// Device-list changes.
    #[serde(default)]
    pub device_lists: DeviceListChanges,
    /// One-time-key counts per user and device (an exhausted device is an empty map).
    #[serde(default)]
    pub one_time_keys: KeyCounts,
    /// Unused fallback key types per user and device.
    #[serde(default)]
    pub fallback_keys: FallbackKeys,
}

/// The transaction fields that carry encryption data, under the names Synapse uses.
#[derive(Deserialize)]
struct TransactionCrypto {
    #[serde(rename = "de.sorunome.msc2409.to_device", default)]
    to_device_unstable: Option<Vec<Box<RawValue>>>,
    #[serde(rename = "to_device", default)]
    to_device_stable: Option<Vec<Box<RawValue>>>,
    #[serde(rename = "org.matrix.msc3202.device_lists", default)]
    device_lists: Option<DeviceListChanges>,
    #[serde(rename = "org.matrix.msc3202.device_one_time_keys_count", default)]
    one_time_keys: Option<KeyCounts>,
    #[serde(rename = "org.matrix.msc3202.device_one_time_key_counts", default)]
    one_time_keys_old: Option<KeyCounts>,
    #[serde(
        rename = "org.matrix.msc3202.device_unused_fallback_key_types",
        default
    )]
    fallback_keys: Option<FallbackKeys>,
}

/// A to-device message for one device.
#[derive(Debug, Clone)]
pub struct ToDevice {
    /// The device it is for.
    pub device: OwnedDeviceId,
    /// The message, as received.
    pub event: Raw<AnyToDeviceEvent>,
}

/// The recipient fields MSC2409 adds to each to-device message.
#[derive(Deserialize)]
struct Recipient {
    to_user_id: OwnedUserId,
    to_device_id: OwnedDeviceId,
}

impl CryptoChanges {
    /// The to-device messages per recipient user; messages without a readable recipient are
    /// left out (and counted in the second value).
    pub fn to_device_by_user(&self) -> (BTreeMap<OwnedUserId, Vec<ToDevice>>, usize) {
        let mut by_user: BTreeMap<OwnedUserId, Vec<ToDevice>> = BTreeMap::new();
        let mut unreadable = 0;
        for raw in &self.to_device {
            match serde_json::from_str::<Recipient>(raw.get()) {
                Ok(recipient) => by_user
                    .entry(recipient.to_user_id)
                    .or_default()
                    .push(ToDevice {
                        device: recipient.to_device_id,
                        event: Raw::from_json(raw.clone()),
                    }),
                Err(_) => unreadable += 1,
            }
        }
        (by_user, unreadable)
    }

    /// The users this data addresses by name: recipients of to-device messages and owners of
    /// key counts.
    pub fn addressed_users(&self) -> Vec<OwnedUserId> {
        let (to_device, _) = self.to_device_by_user();
        let mut users: Vec<OwnedUserId> = to_device.into_keys().collect();
        users.extend(self.one_time_keys.keys().cloned());
        users.extend(self.fallback_keys.keys().cloned());
        users.sort();
        users.dedup();
        users
    }

    /// Reads the encryption fields of a transaction body; `Ok(None)` when there are none.
    pub fn from_transaction(body: &[u8]) -> Result<Option<Self>, serde_json::Error> {
        let raw: TransactionCrypto = serde_json::from_slice(body)?;
        let changes = Self {
            to_device: raw
                .to_device_unstable
                .or(raw.to_device_stable)
                .unwrap_or_default(),
            device_lists: raw.device_lists.unwrap_or_default(),
            one_time_keys: raw
                .one_time_keys
                .or(raw.one_time_keys_old)
                .unwrap_or_default(),
            fallback_keys: raw.fallback_keys.unwrap_or_default(),
        };
        Ok((!changes.is_empty()).then_some(changes))
    }

    /// Whether there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.to_device.is_empty()
            && self.device_lists.changed.is_empty()
            && self.device_lists.left.is_empty()
            && self.one_time_keys.is_empty()
            && self.fallback_keys.is_empty()
    }

    /// One-time-key counts of one device, with an exhausted device (`{}`) read as zero
    /// `signed_curve25519` keys so that new keys get uploaded.
    pub fn one_time_keys_for(
        &self,
        user: &ruma::UserId,
        device: &ruma::DeviceId,
    ) -> Option<BTreeMap<OneTimeKeyAlgorithm, UInt>> {
        let mut counts = self.one_time_keys.get(user)?.get(device)?.clone();
        counts
            .entry(OneTimeKeyAlgorithm::SignedCurve25519)
            .or_insert(UInt::MIN);
        Some(counts)
    }

    /// Unused fallback key types of one device, when the transaction said.
    pub fn fallback_keys_for(
        &self,
        user: &ruma::UserId,
        device: &ruma::DeviceId,
    ) -> Option<Vec<OneTimeKeyAlgorithm>> {
        self.fallback_keys.get(user)?.get(device).cloned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use ruma::{device_id, user_id};

    use super::*;

    const SYNAPSE_TXN: &str = r#"{
        "events": [],
        "de.sorunome.msc2409.to_device": [
            {"type": "m.room.encrypted", "sender": "@bob:x", "to_user_id": "@alice_ai:x",
             "to_device_id": "TWINDEV", "content": {"algorithm": "m.olm.v1.curve25519-aes-sha2", "ciphertext": {}}}
        ],
        "org.matrix.msc3202.device_lists": {"changed": ["@bob:x"], "left": []},
        "org.matrix.msc3202.device_one_time_key_counts": {"@alice_ai:x": {"TWINDEV": {}}},
        "org.matrix.msc3202.device_one_time_keys_count": {"@alice_ai:x": {"TWINDEV": {}}},
        "org.matrix.msc3202.device_unused_fallback_key_types": {"@alice_ai:x": {"TWINDEV": ["signed_curve25519"]}}
    }"#;

    #[test]
    fn synapse_fields_are_read_and_exhausted_counts_become_zero() {
        let changes = CryptoChanges::from_transaction(SYNAPSE_TXN.as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(changes.to_device.len(), 1);
        assert_eq!(
            changes.device_lists.changed,
            vec![user_id!("@bob:x").to_owned()]
        );
        let counts = changes
            .one_time_keys_for(user_id!("@alice_ai:x"), device_id!("TWINDEV"))
            .unwrap();
        assert_eq!(
            counts.get(&OneTimeKeyAlgorithm::SignedCurve25519),
            Some(&UInt::MIN)
        );
        assert_eq!(
            changes
                .fallback_keys_for(user_id!("@alice_ai:x"), device_id!("TWINDEV"))
                .unwrap(),
            vec![OneTimeKeyAlgorithm::SignedCurve25519]
        );
        // Kept in the inbox as JSON and read back unchanged.
        let stored = serde_json::to_string(&changes).unwrap();
        let back: CryptoChanges = serde_json::from_str(&stored).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), stored);
        insta::assert_snapshot!(stored);
    }

    #[test]
    fn a_plain_transaction_has_no_crypto_changes() {
        assert!(
            CryptoChanges::from_transaction(br#"{"events":[]}"#)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn malformed_crypto_fields_are_errors() {
        assert!(
            CryptoChanges::from_transaction(
                br#"{"events":[],"org.matrix.msc3202.device_lists":5}"#
            )
            .is_err()
        );
        assert!(
            CryptoChanges::from_transaction(br#"{"events":[],"de.sorunome.msc2409.to_device":{}}"#)
                .is_err()
        );
    }
}
