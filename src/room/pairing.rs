//! Strangers: a first DM starts a pairing request the owner answers in their own DM; until
//! then (and when refused) the stranger gets a polite notice, once.

use std::sync::Arc;

use ruma::events::room::member::MembershipState;
use ruma::{EventId, RoomId, UserId};

use super::{RoomError, decide::ReplyTo, limits::Limits};
use crate::policy::NoticeVerdict;

/// Most characters of a stranger's first message quoted to the owner.
const MAX_QUOTED_CHARS: usize = 1_000;
use crate::{
    matrix::{MatrixClient, TxnPart, txn_id_for},
    outbox::Outbox,
    policy::AccessPolicy,
    storage::{MemberRow, PairingRow, Store},
    turns::{TurnRunner, first_message_job},
};

/// Strangers' first messages and the owner's answers to them.
#[derive(Debug)]
pub struct Pairing {
    store: Store,
    matrix: MatrixClient,
    outbox: Arc<Outbox>,
    limits: Arc<Limits>,
    turns: Arc<TurnRunner>,
}

impl Pairing {
    /// Pairing over these stages; an approved stranger's first message is answered by `turns`.
    pub fn new(
        store: Store,
        matrix: MatrixClient,
        outbox: Arc<Outbox>,
        limits: Arc<Limits>,
        turns: Arc<TurnRunner>,
    ) -> Self {
        Self {
            store,
            matrix,
            outbox,
            limits,
            turns,
        }
    }

    /// A stranger wrote to the twin in a DM: ask the owner (once), tell the stranger to wait.
    pub async fn request(
        &self,
        twin: &UserId,
        owner: &UserId,
        room: &RoomId,
        event_id: &EventId,
        sender: &UserId,
        text: &str,
    ) -> Result<(), RoomError> {
        let row = PairingRow {
            twin_id: twin.to_owned(),
            requester: sender.to_owned(),
            room_id: room.to_owned(),
            event_id: event_id.to_owned(),
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
        let ask = match self.limits.owner_notice(twin) {
            NoticeVerdict::Send => {
                let name = crate::kernel::quote::name(&self.name_of(room, sender).await);
                let first: String = text.chars().take(MAX_QUOTED_CHARS).collect();
                let cut = if first.len() < text.len() { " …" } else { "" };
                Some(format!(
                    "🔔 **{name}** wants to talk with me. Their first message:\n\n> {}{cut}\n\n\
                     Reply `!ai approve {sender}` to let me answer them (as your assistant, from \
                     your public profile only), or `!ai deny {sender}`.",
                    first.replace('\n', "\n> ")
                ))
            }
            NoticeVerdict::Summarize => Some(format!(
                "🔔 Many people are asking to talk with me right now; I'm not telling you about \
                 each one for a while. {sender} is one of them: `!ai approve {sender}` or \
                 `!ai deny {sender}`. `!ai policy pairing off` stops such requests."
            )),
            NoticeVerdict::Quiet => None,
        };
        if let Some(ask) = ask {
            let owner_dm = self.outbox.owner_dm(twin, owner).await?;
            self.outbox
                .send_notice(
                    twin,
                    &owner_dm,
                    &txn_id_for(twin.as_str(), event_id.as_str(), TxnPart::ToOwner),
                    &ask,
                    &ReplyTo::Plain,
                    Some(owner),
                )
                .await?;
        }
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
    /// Tells someone, once, that the twin does not answer them here.
    pub async fn refuse(
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
        self.outbox
            .send_notice(
                twin,
                room,
                &txn_id_for(twin.as_str(), event_id.as_str(), TxnPart::ToSender),
                notice,
                &ReplyTo::Reply(event_id.to_owned()),
                Some(sender),
            )
            .await
            .map(|_| ())
    }

    /// The owner approved (`approve = true`) or denied a stranger; `access` is the policy
    /// already saved. Returns what to tell the owner.
    /// The owner approved or denied `requester`: tell them, and answer their first message
    /// when approved; returns what to tell the owner.
    pub async fn answer(
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
            .set_pairing_status(twin, requester, status)
            .await?;
        let pairing = if known {
            self.store.pairing(twin, requester).await?
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
        let (room, first) = (pairing.room_id, pairing.event_id);
        let txn = txn_id_for(twin.as_str(), command_event.as_str(), TxnPart::ToRequester);
        if approve {
            let hello =
                format!("{owner} agreed that I may talk with you. Let me answer your message.");
            self.outbox
                .send_notice(twin, &room, &txn, &hello, &ReplyTo::Plain, Some(requester))
                .await?;
            debug_assert!(access.may_dm(requester));
            let job = first_message_job(
                twin,
                owner,
                room.clone(),
                first,
                requester.to_owned(),
                pairing.body.clone(),
            );
            self.turns.run(&job).await?;
            Ok(format!(
                "✅ {requester} may now talk with me; I answered their first message."
            ))
        } else {
            let bye = format!("{owner} would rather I didn't talk with you. Goodbye!");
            self.outbox
                .send_notice(twin, &room, &txn, &bye, &ReplyTo::Plain, Some(requester))
                .await?;
            if let Err(err) = self.matrix.leave_room(twin, &room, None).await {
                tracing::warn!(%err, "could not leave the denied DM");
            }
            self.store
                .set_membership(&room, twin, &MembershipState::Leave)
                .await?;
            Ok(format!(
                "🚫 {requester} is blocked; I told them and left our DM."
            ))
        }
    }

    /// The owner's DM with the twin; created (encrypted, owner invited) when there is none.
    async fn name_of(&self, room: &RoomId, user: &UserId) -> String {
        let members: Vec<MemberRow> = self.store.room_members(room).await.unwrap_or_default();
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
