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
    /// The owner's DM with the twin (opened when there is none).
    pub async fn owner_dm(&self, twin: &UserId, owner: &UserId) -> Result<OwnedRoomId, RoomError> {
        let rooms = self.store.owner_dms(twin, owner).await?;
        if let Some(room) = rooms.into_iter().next() {
            return Ok(room);
        }
        let room = self.open_dm(twin, owner).await?;
        tracing::info!(%twin, %owner, %room, "opened a DM with the owner");
        Ok(room)
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
        let rooms = match self.store.owner_dms(twin, owner).await {
            Ok(rooms) => {
                tracing::debug!(%twin, notices = notices.len(), dms = rooms.len(), "delivering notices kept for the owner");
                rooms
            }
            Err(err) => {
                tracing::warn!(%err, "cannot read the owner's DMs");
                return;
            }
        };
        for room in rooms {
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
