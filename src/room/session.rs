//! The room session: one event of one room, from decryption to the actions it leads to.

use std::sync::Arc;

use ruma::{OwnedUserId, RoomId, UserId, events::room::member::MembershipState};

use super::{
    CommandRunner, Pairing, ROOM_LOG_KEEP, RoomError,
    decide::{Action, Context, decide},
    event::RoomEvent,
};
use crate::{
    config::AccessConfig,
    crypto::Crypto,
    matrix::MatrixClient,
    metrics::{Metrics, RefusedReason},
    negotiator::Negotiator,
    outbox::Outbox,
    storage::{StorageError, Store},
    turns::TurnRunner,
    twin::Twins,
};

/// What a room session works with: the stages it hands actions to, and the store, homeserver
/// and twins it reads facts from.
#[derive(Debug, Clone)]
pub struct SessionParts {
    /// The database.
    pub store: Store,
    /// The homeserver, for joins, leaves and member lists.
    pub matrix: MatrixClient,
    /// The twins directory.
    pub twins: Arc<Twins>,
    /// Decryption.
    pub crypto: Arc<Crypto>,
    /// The turn runner.
    pub turns: Arc<TurnRunner>,
    /// Commands.
    pub commands: Arc<CommandRunner>,
    /// Strangers' first messages.
    pub pairing: Arc<Pairing>,
    /// Negotiations.
    pub negotiator: Arc<Negotiator>,
    /// Sending.
    pub outbox: Arc<Outbox>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// `[access]` defaults.
    pub access_defaults: AccessConfig,
    /// `encryption.owner_devices`.
    pub owner_devices: crate::config::OwnerDevices,
    /// The trusted bridges (`[bridges]`).
    pub bridges: Arc<crate::bridge::Bridges>,
    /// Portals where the owner answered lately.
    pub quiet: Arc<crate::bridge::QuietPortals>,
}

/// Handles the events of rooms (one at a time per room: the room queues call it in order).
#[derive(Debug)]
pub struct RoomSession {
    pub(super) parts: SessionParts,
}

impl RoomSession {
    /// A session over these parts.
    pub fn new(parts: SessionParts) -> Self {
        Self { parts }
    }

    /// Decrypts when needed, records, decides and acts. Failures are logged (without message
    /// text) and the room goes on.
    pub async fn handle(&self, event: RoomEvent) {
        let Some(room) = event.room_id().map(ToOwned::to_owned) else {
            return;
        };
        let store = &self.parts.store;
        if matches!(
            event,
            RoomEvent::EncryptionEnabled { .. } | RoomEvent::Encrypted { .. }
        ) && let Err(err) = store.set_room_encrypted(&room, true).await
        {
            tracing::error!(%err, "cannot record that the room is encrypted");
        }
        let joined = match self.joined_twins(&room).await {
            Ok(joined) => joined,
            Err(err) => {
                tracing::error!(%err, %room, "cannot read the room's twins");
                return;
            }
        };
        let event = match event {
            RoomEvent::Encrypted {
                event_id,
                sender,
                session_id,
                raw,
                ..
            } => {
                match self
                    .decrypt_new(
                        &room,
                        &event_id,
                        &sender,
                        session_id.as_deref(),
                        &raw,
                        &joined,
                    )
                    .await
                {
                    Some(plain) => plain,
                    None => return,
                }
            }
            event => {
                if matches!(event, RoomEvent::Text { .. } | RoomEvent::Protocol { .. })
                    && self.refuse_plaintext(&room, &event).await
                {
                    return;
                }
                self.act(&event, &joined, false).await;
                return;
            }
        };
        self.act(&event, &joined, true).await;
    }

    /// Whether a plaintext message (or protocol event) must be refused because its room is
    /// encrypted: in an encrypted room, only what arrived encrypted is believed.
    async fn refuse_plaintext(&self, room: &RoomId, event: &RoomEvent) -> bool {
        match self.parts.store.room_encrypted(room).await {
            Ok(Some(true)) => {
                self.parts
                    .metrics
                    .refused(RefusedReason::PlaintextInEncryptedRoom);
                tracing::warn!(%room, kind = event.kind(), "plaintext event in an encrypted room; ignored");
                true
            }
            Ok(_) => false,
            Err(err) => {
                // Fail closed: without knowing, a plaintext message might be a forgery.
                tracing::error!(%err, %room, "cannot read whether the room is encrypted; event ignored");
                true
            }
        }
    }

    /// Records, decides and acts on an event (`arrived_encrypted` when it was decrypted).
    pub(super) async fn act(
        &self,
        event: &RoomEvent,
        joined: &[OwnedUserId],
        arrived_encrypted: bool,
    ) {
        let Some(room) = event.room_id() else {
            return;
        };
        if let Err(err) = self.record(event, joined).await {
            tracing::error!(%err, %room, "cannot record the event");
        }
        let facts = match self.facts(event, joined).await {
            Ok(facts) => facts,
            Err(err) => {
                tracing::error!(%err, %room, "cannot gather the room's facts");
                return;
            }
        };
        let views = facts.views();
        let twins = &self.parts.twins;
        let may_have_twin = |owner: &UserId| twins.may_have_twin(owner);
        let ctx = Context {
            naming: twins.naming(),
            may_have_twin: &may_have_twin,
            twins: &views,
            member_count: facts.member_count,
            arrived_encrypted,
            bridges: &self.parts.bridges,
        };
        for action in decide(event, &ctx) {
            if let Err(err) = self.execute(&action).await {
                tracing::error!(%err, action = action.kind(), %room, "action failed");
            }
        }
    }

    /// The twins joined to `room`, as recorded.
    pub(super) async fn joined_twins(
        &self,
        room: &ruma::RoomId,
    ) -> Result<Vec<OwnedUserId>, StorageError> {
        Ok(self
            .parts
            .store
            .room_twins(room)
            .await?
            .into_iter()
            .filter(|(_, membership)| *membership == MembershipState::Join)
            .map(|(twin, _)| twin)
            .collect())
    }

    /// Keeps what later decisions need: members and their names, recent messages, and the
    /// events twins sent (replies to them and their threads address them).
    async fn record(&self, event: &RoomEvent, joined: &[OwnedUserId]) -> Result<(), StorageError> {
        let store = &self.parts.store;
        match event {
            RoomEvent::Member {
                room_id,
                target,
                membership,
                display_name,
                ..
            } => {
                store
                    .set_room_member(room_id, target, membership, display_name.as_deref())
                    .await
            }
            RoomEvent::Text {
                room_id,
                event_id,
                sender,
                body,
                is_edit: false,
                refs,
                ..
            } if !joined.is_empty() => {
                store
                    .log_message(room_id, event_id, sender, body, ROOM_LOG_KEEP)
                    .await?;
                if self.parts.twins.naming().is_twin(sender) {
                    store
                        .add_twin_event(room_id, event_id, sender, refs.thread_root.as_deref())
                        .await?;
                }
                Ok(())
            }
            RoomEvent::BridgeState {
                room_id,
                sender,
                event_type,
                content,
            } => {
                self.record_bridge_state(room_id, sender, event_type, content)
                    .await
            }
            _ => Ok(()),
        }
    }

    /// Hands an action to the stage that does it. Nothing is retried here: sends are retried
    /// by the outbox, and a turn records its effects before it sends anything.
    async fn execute(&self, action: &Action) -> Result<(), RoomError> {
        let parts = &self.parts;
        match action {
            Action::RecordMembership {
                twin,
                room,
                membership,
            } => {
                parts.store.set_membership(room, twin, membership).await?;
            }
            Action::Join {
                twin,
                room,
                direct_from_owner,
            } => self.join(twin, room, *direct_from_owner).await?,
            Action::Decline { twin, room, reason } => self.decline(twin, room, reason).await?,
            Action::Turn(job) => parts.turns.run(job).await?,
            Action::Command {
                twin,
                owner,
                room,
                event_id,
                sender,
                command,
            } => {
                let approved = parts
                    .commands
                    .run(twin, owner, room, event_id, sender, command)
                    .await?;
                if let Some(held) = approved {
                    parts
                        .turns
                        .run_approved(twin, owner, &held, event_id)
                        .await?;
                }
            }
            Action::Pairing {
                twin,
                owner,
                room,
                event_id,
                sender,
                text,
            } => {
                parts
                    .pairing
                    .request(twin, owner, room, event_id, sender, text)
                    .await?
            }
            Action::Protocol {
                twin,
                owner,
                room,
                event_id,
                sender,
                event_type,
                content,
            } => {
                parts
                    .negotiator
                    .on_protocol_event(twin, owner, room, event_id, sender, event_type, content)
                    .await?
            }
            Action::OwnerAnswered { twin, room } => {
                tracing::debug!(%twin, %room, "the owner answered in a portal; the twin is quiet there");
                parts.quiet.owner_answered(twin, room);
            }
            Action::Refuse {
                twin,
                owner,
                room,
                event_id,
                sender,
            } => {
                parts
                    .pairing
                    .refuse(twin, owner, room, event_id, sender)
                    .await?
            }
        }
        Ok(())
    }
}
