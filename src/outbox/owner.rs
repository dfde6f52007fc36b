//! Telling an owner things in their DM with the twin: which room that is, opening one when
//! there is none, and keeping a notice until a usable DM exists.

use ruma::events::room::member::MembershipState;
use ruma::{OwnedRoomId, UserId};

use super::{Outbox, ReplyTo};
use crate::{
    matrix::{TxnPart, txn_id_for},
    room::RoomError,
};

impl Outbox {
    /// The owner's DM with the twin: the bound one while it is usable (just the twin and the
    /// owner in it); otherwise a new one, opened by the twin and bound. Never a room someone
    /// else made to look like a DM.
    pub async fn owner_dm(&self, twin: &UserId, owner: &UserId) -> Result<OwnedRoomId, RoomError> {
        if let Some(room) = self.bound_dm(twin, owner).await? {
            return Ok(room);
        }
        let room = self.open_dm(twin, owner).await?;
        self.store.set_owner_dm(twin, &room).await?;
        tracing::info!(%twin, %owner, %room, "opened a DM with the owner");
        Ok(room)
    }

    /// Whether `room` is the owner's bound DM, still usable (only the owner and the twin in
    /// it): where held actions are approved.
    pub async fn is_owner_dm(
        &self,
        twin: &UserId,
        owner: &UserId,
        room: &ruma::RoomId,
    ) -> Result<bool, RoomError> {
        Ok(self.bound_dm(twin, owner).await?.as_deref() == Some(room))
    }

    /// The bound owner DM, when it is still usable; an unusable one is unbound.
    async fn bound_dm(
        &self,
        twin: &UserId,
        owner: &UserId,
    ) -> Result<Option<OwnedRoomId>, RoomError> {
        let Some(bound) = self.store.owner_dm(twin).await? else {
            return Ok(None);
        };
        if self.store.is_two_member_dm(twin, owner, &bound).await? {
            return Ok(Some(bound));
        }
        tracing::info!(%twin, room = %bound, "the owner's DM has someone else in it or lost the owner; a new one will be opened");
        self.store.clear_owner_dm(twin, &bound).await?;
        Ok(None)
    }

    /// Creates an encrypted direct chat of `twin` with `other` and records it.
    pub async fn open_dm(&self, twin: &UserId, other: &UserId) -> Result<OwnedRoomId, RoomError> {
        let room = self.matrix.create_dm(twin, other).await?;
        self.store.set_room_encrypted(&room, true).await?;
        self.store
            .set_membership(&room, twin, &MembershipState::Join)
            .await?;
        self.store
            .set_room_member(&room, twin, &MembershipState::Join, None)
            .await?;
        self.store
            .set_room_member(&room, other, &MembershipState::Invite, None)
            .await?;
        Ok(room)
    }

    /// A notice in the owner's DM; `key` makes it once-only (a repeat is deduplicated by the
    /// homeserver).
    pub async fn tell_owner(
        &self,
        twin: &UserId,
        owner: &UserId,
        key: &str,
        text: &str,
    ) -> Result<(), RoomError> {
        let dm = self.owner_dm(twin, owner).await?;
        let txn = txn_id_for(twin.as_str(), key, TxnPart::OwnerNotice);
        self.send_notice(twin, &dm, &txn, text, &ReplyTo::Plain, Some(owner))
            .await?;
        Ok(())
    }

    /// Delivers the notices kept for the owner (see [`crate::storage::Store::add_owner_notice`]),
    /// each once. A DM that the homeserver refuses (a room of a homeserver whose data was
    /// reset, a room the owner left) is forgotten, and the notices wait for the next one.
    pub async fn deliver_owner_notices(&self, twin: &UserId, owner: &UserId) {
        let notices = match self.store.owner_notices(twin).await {
            Ok(notices) if notices.is_empty() => return,
            Ok(notices) => notices,
            Err(err) => {
                tracing::warn!(%err, "cannot read notices kept for the owner");
                return;
            }
        };
        let room = match self.bound_dm(twin, owner).await {
            Ok(room) => {
                tracing::debug!(%twin, notices = notices.len(), "delivering notices kept for the owner");
                room
            }
            Err(err) => {
                tracing::warn!(%err, "cannot read the owner's DM");
                return;
            }
        };
        if let Some(room) = room {
            let mut usable = true;
            for notice in &notices {
                let txn = txn_id_for(twin.as_str(), &notice.key, TxnPart::OwnerNotice);
                match self
                    .send_notice(
                        twin,
                        &room,
                        &txn,
                        &notice.body,
                        &ReplyTo::Plain,
                        Some(owner),
                    )
                    .await
                {
                    Ok(_) => {
                        if let Err(err) = self.store.remove_owner_notice(twin, &notice.key).await {
                            tracing::warn!(%err, "cannot forget a delivered notice");
                        }
                    }
                    Err(err) if err.is_transient() => {
                        tracing::warn!(%err, "a notice for the owner could not be sent yet");
                        return;
                    }
                    Err(err) => {
                        tracing::info!(%room, %err, "the owner's DM cannot be used; forgetting it");
                        usable = false;
                        break;
                    }
                }
            }
            if usable {
                return;
            }
            if let Err(err) = self.store.clear_owner_dm(twin, &room).await {
                tracing::warn!(%err, "cannot unbind an unusable DM");
            }
            let forgotten = self
                .store
                .set_membership(&room, twin, &MembershipState::Leave)
                .await;
            let left = self
                .store
                .set_room_member(&room, twin, &MembershipState::Leave, None)
                .await;
            if let Err(err) = forgotten.and(left) {
                tracing::warn!(%err, "cannot forget an unusable DM");
            }
        }
    }
}
