//! Portals: learning that a room is a bridged chat, from the state its bridge bot sent.

use ruma::{RoomId, UserId};

use super::{RoomError, RoomSession};
use crate::{
    bridge::{
        Portal,
        portal::{BRIDGE_STATE, FUNCTIONAL_MEMBERS_STATE, HALF_SHOT_BRIDGE_STATE},
    },
    storage::StorageError,
};

impl RoomSession {
    /// Records bridge state: a trusted bot's `m.bridge` makes the room a portal, its
    /// `io.element.functional_members` names the service members. Anyone else's is ignored.
    pub(super) async fn record_bridge_state(
        &self,
        room: &RoomId,
        sender: &UserId,
        event_type: &str,
        content: &serde_json::Value,
    ) -> Result<(), StorageError> {
        let parts = &self.parts;
        match event_type {
            BRIDGE_STATE | HALF_SHOT_BRIDGE_STATE => {
                match Portal::from_bridge_state(&parts.bridges, sender, content) {
                    Some(portal) => {
                        tracing::info!(%room, network = %portal.network, kind = portal.kind.as_str(), "the room is a portal");
                        parts.store.set_portal(room, &portal).await
                    }
                    None => {
                        if !parts.bridges.is_bot(sender) {
                            tracing::warn!(%room, %sender, "bridge state from someone who is no trusted bridge bot; ignored");
                        }
                        Ok(())
                    }
                }
            }
            FUNCTIONAL_MEMBERS_STATE => {
                let Some(portal) = parts.store.portal(room).await? else {
                    return Ok(());
                };
                match portal.service_members_from(sender, content) {
                    Some(members) => parts.store.set_portal_service_members(room, &members).await,
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Reads a room the twin just joined for bridge state (portals are made before the twin
    /// comes, so their state never arrives in a transaction).
    pub(super) async fn learn_portal(&self, twin: &UserId, room: &RoomId) -> Result<(), RoomError> {
        if self.parts.bridges.is_empty() {
            return Ok(());
        }
        let mut state = self.parts.matrix.room_state(twin, room).await?;
        // The portal first, then what depends on it.
        state.sort_by_key(|(kind, ..)| kind == FUNCTIONAL_MEMBERS_STATE);
        for (kind, sender, state_key, content) in state {
            let wanted = match kind.as_str() {
                BRIDGE_STATE | HALF_SHOT_BRIDGE_STATE => true,
                FUNCTIONAL_MEMBERS_STATE => state_key.is_empty(),
                _ => false,
            };
            if wanted {
                self.record_bridge_state(room, &sender, &kind, &content)
                    .await?;
            }
        }
        Ok(())
    }
}
