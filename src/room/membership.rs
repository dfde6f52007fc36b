//! A twin's own membership: joining on an invite, declining one, and learning who is in a room
//! it just joined.

use ruma::{RoomId, UserId, events::room::member::MembershipState};

use super::{RoomError, RoomSession};

impl RoomSession {
    /// Accepts an invite: the twin is made ready (device first, so people's clients share
    /// room keys with it from the first message), joins, and learns the room's members.
    pub(super) async fn join(
        &self,
        twin: &UserId,
        room: &RoomId,
        direct_from_owner: bool,
    ) -> Result<(), RoomError> {
        let parts = &self.parts;
        let owner = parts
            .twins
            .naming()
            .owner_of(twin)
            .ok_or_else(|| RoomError::Internal(format!("{twin} is not a twin")))?;
        parts.twins.ensure(&owner).await?;
        parts.matrix.join_room(twin, room).await?;
        parts
            .store
            .set_membership(room, twin, &MembershipState::Join)
            .await?;
        self.seed_members(twin, room).await;
        if let Err(err) = self.learn_portal(twin, room).await {
            tracing::warn!(%err, %room, "cannot read the room's bridge state");
        }
        tracing::info!(%twin, %room, "joined on an invite");
        // The owner's own DM invite binds the room the twin tells them things in, and gets
        // the notices that waited for one. A room someone else made, however DM-like, does
        // not.
        let members = parts.store.room_members(room).await?;
        let with_owner = members.len() == 2 && members.iter().any(|m| m.user_id == owner);
        // A bridged chat is never the owner's DM, even their note-to-self chat: what the twin
        // tells the owner there would go out through the bridge.
        let portal = parts.store.portal(room).await?.is_some();
        if direct_from_owner && with_owner && !portal {
            parts.store.set_owner_dm(twin, room).await?;
            tracing::info!(%twin, %room, "the owner's DM is bound");
            parts.outbox.deliver_owner_notices(twin, &owner).await;
        }
        Ok(())
    }

    /// Refuses an invite, telling the inviter why.
    pub(super) async fn decline(
        &self,
        twin: &UserId,
        room: &RoomId,
        reason: &str,
    ) -> Result<(), RoomError> {
        let parts = &self.parts;
        // The twin must exist to answer the invite at all.
        if let Some(owner) = parts.twins.naming().owner_of(twin)
            && parts.twins.may_have_twin(&owner)
        {
            parts.twins.ensure(&owner).await?;
        }
        match parts.matrix.leave_room(twin, room, Some(reason)).await {
            Ok(()) => tracing::info!(%twin, %room, "declined an invite"),
            // An unregistered twin cannot decline; the invite simply stays unanswered.
            Err(err) if !err.is_transient() => {
                tracing::warn!(%twin, %room, %err, "could not decline invite")
            }
            Err(err) => return Err(err.into()),
        }
        Ok(())
    }

    /// Records who is in a room the twin just joined (later changes come as member events).
    pub(super) async fn seed_members(&self, twin: &UserId, room: &RoomId) {
        let parts = &self.parts;
        match parts.matrix.joined_members(twin, room).await {
            Ok(members) => {
                for (user, name) in members {
                    if let Err(err) = parts
                        .store
                        .set_room_member(room, &user, &MembershipState::Join, name.as_deref())
                        .await
                    {
                        tracing::warn!(%err, "cannot record a room member");
                    }
                }
            }
            Err(err) => tracing::warn!(%err, %room, "cannot read the room's members"),
        }
    }
}
