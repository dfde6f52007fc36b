//! Strangers: a first DM starts a pairing request the owner answers in their own DM; until
//! then (and when refused) the stranger gets a polite notice, once.

use ruma::{EventId, OwnedRoomId, RoomId, UserId};

use super::{
    RoomError, Rooms,
    decide::{Action, ReplyTo, Speaker},
};
use crate::{
    matrix::txn_id_for,
    policy::AccessPolicy,
    storage::{MemberRow, PairingRow},
};

/// Transaction id parts, so each message a cause produces has its own id.
pub(super) mod part {
    /// A notice to the sender (pairing, refusal).
    pub(crate) const TO_SENDER: u32 = 2;
    /// A message to the owner about the cause.
    pub(crate) const TO_OWNER: u32 = 3;
    /// The answer to a command.
    pub(crate) const COMMAND: u32 = 4;
    /// A notice in another room caused by a command (approval).
    pub(crate) const ELSEWHERE: u32 = 5;
}

impl Rooms {
    /// A stranger wrote to the twin in a DM.
    pub(super) async fn run_pairing(
        &self,
        twin: &UserId,
        owner: &UserId,
        room: &RoomId,
        event_id: &EventId,
        sender: &UserId,
        text: &str,
    ) -> Result<(), RoomError> {
        let row = PairingRow {
            twin_id: twin.to_string(),
            requester: sender.to_string(),
            room_id: room.to_string(),
            event_id: event_id.to_string(),
            body: text.to_owned(),
            status: "pending".into(),
        };
        if !self.store.add_pairing(&row).await? {
            // Asked already: say once more that we are waiting, then keep quiet.
            if self.limits.first_refusal(twin, room, sender) {
                let notice = format!(
                    "I'm still waiting for {owner} to agree that I may talk with you. I'll \
                     answer as soon as they do."
                );
                self.notice_to_sender(twin, room, event_id, sender, &notice)
                    .await?;
            }
            return Ok(());
        }
        let name = self.name_of(room, sender).await;
        let ask = format!(
            "🔔 **{name}** wants to talk with me. Their first message:\n\n> {}\n\nReply \
             `!ai approve {sender}` to let me answer them (as your assistant, from your public \
             profile only), or `!ai deny {sender}`.",
            text.replace('\n', "\n> ")
        );
        let owner_dm = self.owner_dm(twin, owner).await?;
        self.send_notice(
            twin,
            &owner_dm,
            &txn_id_for(twin.as_str(), event_id.as_str(), part::TO_OWNER),
            &ask,
            &ReplyTo::Plain,
            Some(owner),
        )
        .await?;
        let notice = format!(
            "Hello! I'm the AI assistant of {owner}. I've asked {owner} whether I may talk with \
             you, and I'll answer as soon as they agree."
        );
        self.notice_to_sender(twin, room, event_id, sender, &notice)
            .await?;
        tracing::info!(%twin, %sender, "pairing requested");
        Ok(())
    }

    /// Someone the twin will not answer here addressed it: tell them once.
    pub(super) async fn refuse(
        &self,
        twin: &UserId,
        owner: &UserId,
        room: &RoomId,
        event_id: &EventId,
        sender: &UserId,
    ) -> Result<(), RoomError> {
        if !self.limits.first_refusal(twin, room, sender) {
            return Ok(());
        }
        let notice = format!(
            "I'm {owner}'s AI assistant and only answer the people {owner} allows here. You \
             can ask {owner} directly."
        );
        self.notice_to_sender(twin, room, event_id, sender, &notice)
            .await
    }

    async fn notice_to_sender(
        &self,
        twin: &UserId,
        room: &RoomId,
        event_id: &EventId,
        sender: &UserId,
        notice: &str,
    ) -> Result<(), RoomError> {
        self.send_notice(
            twin,
            room,
            &txn_id_for(twin.as_str(), event_id.as_str(), part::TO_SENDER),
            notice,
            &ReplyTo::Reply(event_id.to_owned()),
            Some(sender),
        )
        .await
        .map(|_| ())
    }

    /// The owner approved (`approve = true`) or denied a stranger; `access` is the policy
    /// already saved. Returns what to tell the owner.
    pub(super) async fn answer_pairing(
        &self,
        twin: &UserId,
        owner: &UserId,
        command_event: &EventId,
        requester: &UserId,
        approve: bool,
        access: &AccessPolicy,
    ) -> Result<String, RoomError> {
        let status = if approve { "approved" } else { "denied" };
        let known = self
            .store
            .set_pairing_status(twin.as_str(), requester.as_str(), status)
            .await?;
        let pairing = if known {
            self.store
                .pairing(twin.as_str(), requester.as_str())
                .await?
        } else {
            None
        };
        let Some(pairing) = pairing else {
            return Ok(if approve {
                format!("✅ {requester} may now talk with me.")
            } else {
                format!("🚫 {requester} is now blocked.")
            });
        };
        let (Ok(room), Ok(first)) = (
            OwnedRoomId::try_from(pairing.room_id.as_str()),
            ruma::OwnedEventId::try_from(pairing.event_id.as_str()),
        ) else {
            return Ok(format!(
                "Done, but the request of {requester} was unreadable."
            ));
        };
        let txn = txn_id_for(twin.as_str(), command_event.as_str(), part::ELSEWHERE);
        if approve {
            let hello =
                format!("{owner} agreed that I may talk with you. Let me answer your message.");
            self.send_notice(twin, &room, &txn, &hello, &ReplyTo::Plain, Some(requester))
                .await?;
            debug_assert!(access.may_dm(requester));
            let turn = Action::Turn {
                twin: twin.to_owned(),
                owner: owner.to_owned(),
                room: room.clone(),
                event_id: first,
                sender: requester.to_owned(),
                text: pairing.body.clone(),
                speaker: Speaker::Other,
                reply: ReplyTo::Plain,
                group: false,
                from_bot: false,
            };
            self.run_turn(&turn).await?;
            Ok(format!(
                "✅ {requester} may now talk with me; I answered their first message."
            ))
        } else {
            let bye = format!("{owner} would rather I didn't talk with you. Goodbye!");
            self.send_notice(twin, &room, &txn, &bye, &ReplyTo::Plain, Some(requester))
                .await?;
            if let Err(err) = self.matrix.leave_room(twin, &room, None).await {
                tracing::warn!(%err, "could not leave the denied DM");
            }
            self.store
                .set_membership(room.as_str(), twin.as_str(), "leave")
                .await?;
            Ok(format!(
                "🚫 {requester} is blocked; I told them and left our DM."
            ))
        }
    }

    /// The owner's DM with the twin; created (encrypted, owner invited) when there is none.
    pub(super) async fn owner_dm(
        &self,
        twin: &UserId,
        owner: &UserId,
    ) -> Result<OwnedRoomId, RoomError> {
        let rooms = self.store.owner_dms(twin.as_str(), owner.as_str()).await?;
        if let Some(room) = rooms
            .into_iter()
            .find_map(|r| OwnedRoomId::try_from(r).ok())
        {
            return Ok(room);
        }
        let room = self.open_dm(twin, owner).await?;
        tracing::info!(%twin, %owner, %room, "opened a DM with the owner");
        Ok(room)
    }

    /// Creates an encrypted direct room of `twin` with `other` invited, and records what later
    /// decisions need (encrypted, the twin joined, `other` invited).
    pub(super) async fn open_dm(
        &self,
        twin: &UserId,
        other: &UserId,
    ) -> Result<OwnedRoomId, RoomError> {
        let room = self.matrix.create_dm(twin, other).await?;
        self.store.set_room_encrypted(room.as_str(), true).await?;
        self.store
            .set_membership(room.as_str(), twin.as_str(), "join")
            .await?;
        self.store
            .set_room_member(room.as_str(), twin.as_str(), "join", None)
            .await?;
        self.store
            .set_room_member(room.as_str(), other.as_str(), "invite", None)
            .await?;
        Ok(room)
    }

    /// `Name (@user:server)`, or the MXID when no name is known.
    pub(super) async fn name_of(&self, room: &RoomId, user: &UserId) -> String {
        let members: Vec<MemberRow> = self
            .store
            .room_members(room.as_str())
            .await
            .unwrap_or_default();
        match members
            .into_iter()
            .find(|m| m.user_id == user.as_str())
            .and_then(|m| m.display_name)
        {
            Some(name) => format!("{name} ({user})"),
            None => user.to_string(),
        }
    }
}
