//! The outbox: the only stage that sends as a twin. A message goes out encrypted when its room
//! is (or not at all), with a deterministic transaction id, retried here and nowhere else.
//!
//! Retries are this one layer: the homeserver calls below it are made once, and the stages
//! above it (turns, commands, negotiations) never redo their work because a send failed. When
//! the homeserver says the twin's device is gone, the outbox has the crypto side make a new one
//! and tries again once.

mod content;
mod live;
mod media;
mod owner;
mod render;

use std::{sync::Arc, time::Duration};

use ruma::{
    EventId, OwnedEventId, RoomId, TransactionId, UserId,
    events::{
        AnyMessageLikeEventContent,
        room::message::{Relation, RoomMessageEventContent},
    },
    serde::Raw,
};

pub use self::{
    content::{ReplyTo, Style, message_content},
    live::LIVE_MARKER,
    media::Attachment,
    render::render_markdown,
};
use crate::{
    crypto::{Crypto, CryptoError},
    matrix::{MatrixClient, MatrixError},
    metrics::Metrics,
    room::RoomError,
    storage::Store,
};

/// Attempts of one send, in all.
const SEND_ATTEMPTS: u32 = 5;
/// First wait between attempts; doubled each time, capped by [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between attempts (also caps the homeserver's `retry_after`).
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Sends as twins.
#[derive(Debug)]
pub struct Outbox {
    store: Store,
    matrix: MatrixClient,
    crypto: Arc<Crypto>,
    metrics: Arc<Metrics>,
}

impl Outbox {
    /// An outbox over the homeserver client and the twins' crypto; `store` knows which rooms
    /// are encrypted and which events twins sent.
    pub fn new(
        store: Store,
        matrix: MatrixClient,
        crypto: Arc<Crypto>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            matrix,
            crypto,
            metrics,
        }
    }

    /// Sends a message as `twin` and records it as the twin's (so replies to it address the
    /// twin).
    pub async fn send_message(
        &self,
        twin: &UserId,
        room: &RoomId,
        txn_id: &TransactionId,
        content: RoomMessageEventContent,
    ) -> Result<OwnedEventId, RoomError> {
        let thread_root = match &content.relates_to {
            Some(Relation::Thread(thread)) => Some(thread.event_id.clone()),
            _ => None,
        };
        let raw = Raw::new(&AnyMessageLikeEventContent::RoomMessage(content))
            .map_err(|e| RoomError::Internal(format!("cannot serialize a message: {e}")))?;
        self.send_message_raw(twin, room, txn_id, &raw, thread_root.as_deref())
            .await
    }

    /// Sends an `m.room.message` already serialized (for content ruma has no field for) and
    /// records it as the twin's, in `thread_root`'s thread if any.
    pub(crate) async fn send_message_raw(
        &self,
        twin: &UserId,
        room: &RoomId,
        txn_id: &TransactionId,
        raw: &Raw<AnyMessageLikeEventContent>,
        thread_root: Option<&EventId>,
    ) -> Result<OwnedEventId, RoomError> {
        let event_id = self
            .send_event(twin, room, txn_id, "m.room.message", raw)
            .await?;
        if let Err(err) = self
            .store
            .add_twin_event(room, &event_id, twin, thread_root)
            .await
        {
            tracing::warn!(%err, "cannot record a sent event");
        }
        Ok(event_id)
    }

    /// Sends a notice (never answered by bots and twins).
    pub async fn send_notice(
        &self,
        twin: &UserId,
        room: &RoomId,
        txn_id: &TransactionId,
        markdown: &str,
        reply: &ReplyTo,
        mention: Option<&UserId>,
    ) -> Result<OwnedEventId, RoomError> {
        let content = message_content(markdown, Style::Notice, reply, mention);
        self.send_message(twin, room, txn_id, content).await
    }

    /// Sends an event of any type (the AI-to-AI protocol's custom events) as the twin, under
    /// the same rule as every other event.
    pub async fn send_raw(
        &self,
        twin: &UserId,
        room: &RoomId,
        txn_id: &TransactionId,
        event_type: &str,
        content: &serde_json::Value,
    ) -> Result<OwnedEventId, RoomError> {
        let raw = Raw::new(content)
            .map_err(|e| RoomError::Internal(format!("cannot serialize {event_type}: {e}")))?
            .cast_unchecked::<AnyMessageLikeEventContent>();
        self.send_event(twin, room, txn_id, event_type, &raw).await
    }

    /// The one retry layer: passing failures are tried again with backoff; a device the
    /// homeserver no longer knows is replaced once, then the send is tried again.
    async fn send_event(
        &self,
        twin: &UserId,
        room: &RoomId,
        txn_id: &TransactionId,
        event_type: &str,
        raw: &Raw<AnyMessageLikeEventContent>,
    ) -> Result<OwnedEventId, RoomError> {
        let mut healed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.metrics.sends.inc();
            let error = match self.send_once(twin, room, txn_id, event_type, raw).await {
                Ok(event_id) => return Ok(event_id),
                Err(error) => error,
            };
            if error.device_gone() && !healed {
                healed = true;
                tracing::warn!(%twin, "the homeserver no longer knows the twin's device");
                self.crypto.heal(twin).await?;
                continue;
            }
            if !error.is_transient() || attempt >= SEND_ATTEMPTS {
                self.metrics.send_failures.inc();
                return Err(error);
            }
            self.metrics.send_retries.inc();
            let wait = error
                .retry_after()
                .unwrap_or(FIRST_BACKOFF.saturating_mul(1 << (attempt - 1)))
                .min(MAX_BACKOFF);
            tracing::warn!(%error, attempt, ?wait, "sending failed, retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt: encrypted when the room is (the room key is shared with every joined and
    /// invited device first), plaintext only in rooms known to be unencrypted. When the room's
    /// state cannot be read or encryption fails, nothing is sent.
    async fn send_once(
        &self,
        twin: &UserId,
        room: &RoomId,
        txn_id: &TransactionId,
        event_type: &str,
        raw: &Raw<AnyMessageLikeEventContent>,
    ) -> Result<OwnedEventId, RoomError> {
        if self.is_encrypted(twin, room).await? {
            let members = self.matrix.room_members(twin, room).await?;
            let sent = self
                .crypto
                .send_encrypted(twin, room, &members, event_type, raw, txn_id)
                .await;
            if sent.is_err() {
                self.metrics.encryption_failures.inc();
            }
            Ok(sent?)
        } else {
            Ok(self
                .matrix
                .send_raw_event(twin, room, txn_id, event_type, raw)
                .await?)
        }
    }

    /// Whether `room` is encrypted: as recorded, else asked from the homeserver (and recorded).
    async fn is_encrypted(&self, twin: &UserId, room: &RoomId) -> Result<bool, RoomError> {
        Ok(match self.store.room_encrypted(room).await? {
            Some(encrypted) => encrypted,
            None => {
                let encrypted = self.matrix.room_is_encrypted(twin, room).await?;
                self.store.set_room_encrypted(room, encrypted).await?;
                encrypted
            }
        })
    }
}

impl RoomError {
    /// Whether the homeserver said the twin's device does not exist (any more).
    fn device_gone(&self) -> bool {
        matches!(self, Self::Crypto(CryptoError::DeviceGone { .. }))
    }

    /// How long the homeserver asked us to wait, when it did.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Matrix(MatrixError::Api { retry_after, .. })
            | Self::Crypto(CryptoError::Matrix(MatrixError::Api { retry_after, .. })) => {
                *retry_after
            }
            _ => None,
        }
    }
}
