//! Encrypted events: decrypted by any twin of the room that has the key; kept when none has it
//! yet, with no window in which an arriving key can be missed.
//!
//! An event whose key is missing is stored (`undecrypted`) and then tried once more: a key
//! that arrived between the first try and the row being stored is found by that second try,
//! and a key that arrives after it finds the row (the crypto intake queues a retry for every
//! row of the session whose key arrived). Both paths may decrypt the event; the one that
//! removes the row handles it. What is still stored at start is swept, and rows past
//! `encryption.undecryptable_expiry_secs` are given up with a notice to the owner.

use std::time::Duration;

use ruma::{EventId, OwnedUserId, RoomId, UserId};

use super::{RoomSession, event::RoomEvent};
use crate::{
    config::OwnerDevices,
    crypto::{DecryptError, Decrypted, SenderTrust},
    metrics::RefusedReason,
    room::event::EncryptedRaw,
    storage::Undecrypted,
};

/// Attempts at keeping an event that cannot be decrypted yet.
const KEEP_ATTEMPTS: u32 = 4;

/// How decrypting with every twin of the room went.
enum Outcome {
    /// One twin decrypted it.
    Plain(Decrypted),
    /// No twin has the key (yet), or a twin could not be asked now: keep it.
    Keep,
    /// It cannot be decrypted, whatever arrives later (malformed, unknown scheme).
    Drop(String),
}

impl RoomSession {
    /// Decrypts an event that just arrived; `None` when it is kept for later or dropped.
    pub(super) async fn decrypt_new(
        &self,
        room: &RoomId,
        event_id: &EventId,
        sender: &UserId,
        session_id: Option<&str>,
        raw: &EncryptedRaw,
        joined: &[OwnedUserId],
    ) -> Option<RoomEvent> {
        // No joined twin: nobody here could have been given the key.
        let first = joined.first()?;
        match self.try_decrypt(room, raw, joined).await {
            Outcome::Plain(plain) => return self.accept(room, event_id, &plain, joined).await,
            Outcome::Drop(why) => {
                self.parts.metrics.decryption_failures.inc();
                tracing::warn!(%room, %event_id, %sender, %why, "event cannot be decrypted; dropped");
                return None;
            }
            Outcome::Keep => {}
        }
        let store = &self.parts.store;
        let json = raw.0.json().get();
        let mut attempt = 0;
        let (row, new) = loop {
            attempt += 1;
            match store
                .keep_undecrypted(room, first, session_id.unwrap_or_default(), event_id, json)
                .await
            {
                Ok(kept) => break kept,
                Err(err) if attempt < KEEP_ATTEMPTS => {
                    tracing::warn!(%err, %room, %event_id, "cannot keep an undecryptable event yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                    // Its key may have come meanwhile.
                    if let Outcome::Plain(plain) = self.try_decrypt(room, raw, joined).await {
                        return self.accept(room, event_id, &plain, joined).await;
                    }
                }
                Err(err) => {
                    tracing::error!(%err, %room, %event_id, "cannot keep an undecryptable event");
                    return None;
                }
            }
        };
        // The key may have arrived while the row was being stored.
        if let Outcome::Plain(plain) = self.try_decrypt(room, raw, joined).await {
            return self.claim_kept(row, room, event_id, &plain, joined).await;
        }
        if new {
            tracing::info!(%room, %event_id, session = session_id.unwrap_or_default(), "room key missing; keeping the event until it arrives");
            // The key may be in a to-device message the transactions lost (sent while the
            // service was down): the homeserver still holds it.
            if self.catch_up(joined).await
                && let Outcome::Plain(plain) = self.try_decrypt(room, raw, joined).await
            {
                return self.claim_kept(row, room, event_id, &plain, joined).await;
            }
            for twin in joined {
                if let Err(err) = self.parts.crypto.request_key(twin, room, &raw.0).await {
                    tracing::warn!(%twin, %err, "room key request failed");
                }
            }
        }
        None
    }

    /// Handles an event decrypted right after it was kept, once: whoever removes the kept row
    /// (this call, or a retry on the key's arrival) handles it.
    async fn claim_kept(
        &self,
        row: i64,
        room: &RoomId,
        event_id: &EventId,
        plain: &Decrypted,
        joined: &[OwnedUserId],
    ) -> Option<RoomEvent> {
        match self.parts.store.remove_undecrypted(row).await {
            Ok(true) => self.accept(room, event_id, plain, joined).await,
            Ok(false) => None,
            Err(err) => {
                tracing::warn!(%err, "cannot drop the kept copy of a decrypted event");
                None
            }
        }
    }

    /// Reads the to-device messages the homeserver still holds for the room's twins; whether
    /// any room key arrived.
    async fn catch_up(&self, joined: &[OwnedUserId]) -> bool {
        let mut arrived = false;
        for twin in joined {
            match self.parts.crypto.catch_up_to_device(twin).await {
                Ok(keys) => arrived |= !keys.is_empty(),
                Err(err) => tracing::warn!(%twin, %err, "cannot read the twin's to-device inbox"),
            }
        }
        arrived
    }

    /// Tries a kept event again (its key arrived, or a sweep); handles it when it decrypts now.
    pub async fn retry_undecrypted(&self, kept: Undecrypted) {
        let room = kept.room_id.clone();
        let Ok(raw) = ruma::serde::Raw::from_json_string(kept.event_json.clone()) else {
            // Not even JSON: it never will decrypt.
            let _ = self.parts.store.remove_undecrypted(kept.id).await;
            return;
        };
        let raw = EncryptedRaw(raw);
        let joined = match self.joined_twins(&room).await {
            Ok(joined) => joined,
            Err(err) => {
                tracing::warn!(%err, "cannot read the room's twins");
                return;
            }
        };
        let mut outcome = self.try_decrypt(&room, &raw, &joined).await;
        // Kept before a restart, its key may be one the transactions lost meanwhile.
        if matches!(outcome, Outcome::Keep) && self.catch_up(&joined).await {
            outcome = self.try_decrypt(&room, &raw, &joined).await;
        }
        match outcome {
            Outcome::Keep => {}
            Outcome::Drop(why) => {
                self.parts.metrics.decryption_failures.inc();
                tracing::warn!(%room, event = %kept.event_id, %why, "kept event cannot be decrypted; dropped");
                let _ = self.parts.store.remove_undecrypted(kept.id).await;
            }
            Outcome::Plain(plain) => match self.parts.store.remove_undecrypted(kept.id).await {
                Ok(true) => {
                    tracing::info!(%room, event = %kept.event_id, "room key arrived; handling the kept event");
                    if let Some(event) = self.accept(&room, &kept.event_id, &plain, &joined).await {
                        self.act(&event, &joined, true).await;
                    }
                }
                // Handled already, by the check right after it was kept.
                Ok(false) => {}
                Err(err) => tracing::warn!(%err, "cannot claim a kept event"),
            },
        }
    }

    /// What a decrypted payload may be: only message-like events
    /// ([`RoomEvent::parse_decrypted`]), from a device its user's identity vouches for when
    /// the user has one; for the owner of a twin of the room, `encryption.owner_devices`
    /// decides about a device the owner's identity did not sign. Anything else is refused and
    /// counted.
    async fn accept(
        &self,
        room: &RoomId,
        event_id: &EventId,
        plain: &Decrypted,
        joined: &[OwnedUserId],
    ) -> Option<RoomEvent> {
        let Some(event) = RoomEvent::parse_decrypted(&plain.event.to_string()) else {
            self.parts.metrics.refused(RefusedReason::NotMessageLike);
            tracing::warn!(%room, %event_id, "a decrypted payload was not a message; ignored");
            return None;
        };
        // The envelope's sender (the decrypted event carries it, never the plaintext's).
        let sender = plain
            .event
            .get("sender")
            .and_then(serde_json::Value::as_str)
            .and_then(|s| OwnedUserId::try_from(s).ok())?;
        let naming = self.parts.twins.naming();
        let owned = joined
            .iter()
            .find(|twin| naming.owner_of(twin).as_deref() == Some(&*sender));
        let trust = plain.sender_trust;
        match owned {
            Some(twin) if trust != SenderTrust::CrossSigned => match self.parts.owner_devices {
                OwnerDevices::Warn => {
                    tracing::warn!(%room, %sender, ?trust, "the owner wrote from a device their identity has not signed (encryption.owner_devices = \"refuse\" would ignore it)");
                }
                OwnerDevices::Refuse => {
                    self.parts
                        .metrics
                        .refused(RefusedReason::UnverifiedOwnerDevice);
                    tracing::warn!(%room, %sender, ?trust, "the owner wrote from a device their identity has not signed; ignored");
                    let text = "🔐 A message from your account reached me from a device your \
                         cross-signing identity has not signed, so I did not act on it. If that \
                         device is yours, verify it from one of your other sessions (in Element: \
                         Settings → Sessions) and send it again; if it is not, someone else has \
                         access to your account.";
                    if let Err(err) = self
                        .parts
                        .outbox
                        .tell_owner(twin, &sender, "unsigned-owner-device", text)
                        .await
                    {
                        tracing::warn!(%err, "cannot tell the owner about an unsigned device");
                    }
                    return None;
                }
            },
            None if trust == SenderTrust::UnsignedDevice => {
                self.parts.metrics.refused(RefusedReason::UnsignedDevice);
                tracing::warn!(%room, %sender, "a message from a device its user's identity has not signed; ignored");
                return None;
            }
            _ => {}
        }
        Some(event)
    }

    /// Decrypts with each joined twin in turn until one can.
    async fn try_decrypt(
        &self,
        room: &RoomId,
        raw: &EncryptedRaw,
        joined: &[OwnedUserId],
    ) -> Outcome {
        let mut keep = false;
        let mut why = String::from("no twin of the room could decrypt it");
        for twin in joined {
            match self.parts.crypto.decrypt(twin, room, &raw.0).await {
                Ok(plain) => return Outcome::Plain(plain),
                Err(DecryptError::MissingKey { .. }) => keep = true,
                Err(DecryptError::Crypto(err)) => {
                    tracing::warn!(%twin, %err, "the twin's crypto cannot be used now");
                    keep = true;
                }
                Err(DecryptError::Failed(err)) => why = err,
            }
        }
        if keep {
            Outcome::Keep
        } else {
            Outcome::Drop(why)
        }
    }
}
