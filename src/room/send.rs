//! Sending as a twin: replies and threads, notices, encryption, and remembering what was sent.

use ruma::{
    OwnedEventId, RoomId, TransactionId, UserId,
    events::{
        AnyMessageLikeEventContent, Mentions,
        relation::{InReplyTo, Reply, Thread},
        room::message::{MessageType, Relation, RoomMessageEventContent},
    },
    serde::Raw,
};

use super::{RoomError, Rooms, decide::ReplyTo, render_markdown, retrying};

/// How a message looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    /// An answer (`m.text`).
    Answer,
    /// A service notice (`m.notice`): other bots and twins never answer those.
    Notice,
}

/// The content of a twin's message: Markdown rendered, placed as `reply` says, mentioning
/// `mention` (so the person is notified).
pub(super) fn message_content(
    markdown: &str,
    style: Style,
    reply: &ReplyTo,
    mention: Option<&UserId>,
) -> RoomMessageEventContent {
    let mut content = render_markdown(markdown);
    if style == Style::Notice
        && let MessageType::Text(text) = content.msgtype
    {
        let mut notice =
            ruma::events::room::message::NoticeMessageEventContent::plain(text.body.clone());
        notice.formatted = text.formatted;
        content.msgtype = MessageType::Notice(notice);
    }
    content.relates_to = match reply {
        ReplyTo::Plain => None,
        ReplyTo::Reply(event) => Some(Relation::Reply(Reply::new(InReplyTo::new(event.clone())))),
        ReplyTo::Thread { root, event } => {
            Some(Relation::Thread(Thread::reply(root.clone(), event.clone())))
        }
    };
    content.mentions = Some(match mention {
        Some(user) => Mentions::with_user_ids([user.to_owned()]),
        None => Mentions::new(),
    });
    content
}

impl Rooms {
    /// Sends a message as `twin` and records it as the twin's (so replies to it address the
    /// twin). Passing failures are retried here, so a caller never redoes work that preceded
    /// the send (a kernel turn).
    pub(super) async fn send_message(
        &self,
        twin: &UserId,
        room: &RoomId,
        txn_id: &TransactionId,
        content: RoomMessageEventContent,
    ) -> Result<OwnedEventId, RoomError> {
        let thread_root = match &content.relates_to {
            Some(Relation::Thread(thread)) => Some(thread.event_id.to_string()),
            _ => None,
        };
        let raw = Raw::new(&AnyMessageLikeEventContent::RoomMessage(content))
            .map_err(|e| RoomError::Internal(format!("cannot serialize a message: {e}")))?;
        let event_id = self
            .send_event(twin, room, txn_id, "m.room.message", &raw)
            .await?;
        if let Err(err) = self
            .store
            .add_twin_event(
                room.as_str(),
                event_id.as_str(),
                twin.as_str(),
                thread_root.as_deref(),
            )
            .await
        {
            tracing::warn!(%err, "cannot record a sent event");
        }
        Ok(event_id)
    }

    /// Sends a notice (never answered by bots and twins).
    pub(super) async fn send_notice(
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
    /// the same rule as every other event (see [`Rooms::send_event`]).
    pub(crate) async fn send_raw(
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

    /// Sends an event as the twin: encrypted when the room is (the room key is shared with every
    /// joined and invited device first), plaintext only in rooms known to be unencrypted. If the
    /// room's state cannot be read or encryption fails, nothing is sent. Passing failures are
    /// retried.
    async fn send_event(
        &self,
        twin: &UserId,
        room: &RoomId,
        txn_id: &TransactionId,
        event_type: &str,
        raw: &Raw<AnyMessageLikeEventContent>,
    ) -> Result<OwnedEventId, RoomError> {
        retrying("sending", || async {
            if self.is_encrypted(twin, room).await? {
                let members = self.matrix.room_members(twin, room).await?;
                Ok(self
                    .crypto
                    .send_encrypted(twin, room, &members, event_type, raw, txn_id)
                    .await?)
            } else {
                Ok(self
                    .matrix
                    .send_raw_event(twin, room, txn_id, event_type, raw)
                    .await?)
            }
        })
        .await
    }

    /// Whether `room` is encrypted: as recorded, else asked from the homeserver (and recorded).
    async fn is_encrypted(&self, twin: &UserId, room: &RoomId) -> Result<bool, RoomError> {
        Ok(match self.store.room_encrypted(room.as_str()).await? {
            Some(encrypted) => encrypted,
            None => {
                let encrypted = self.matrix.room_is_encrypted(twin, room).await?;
                self.store
                    .set_room_encrypted(room.as_str(), encrypted)
                    .await?;
                encrypted
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use ruma::{owned_event_id, user_id};

    use super::*;

    fn json(content: &RoomMessageEventContent) -> String {
        serde_json::to_string_pretty(content).unwrap()
    }

    #[test]
    fn replies_threads_and_notices_on_the_wire() {
        let bob = user_id!("@bob:x");
        insta::assert_snapshot!(
            "reply",
            json(&message_content(
                "**ok**",
                Style::Answer,
                &ReplyTo::Reply(owned_event_id!("$q")),
                Some(bob)
            ))
        );
        insta::assert_snapshot!(
            "thread",
            json(&message_content(
                "ok",
                Style::Answer,
                &ReplyTo::Thread {
                    root: owned_event_id!("$root"),
                    event: owned_event_id!("$q")
                },
                Some(bob)
            ))
        );
        insta::assert_snapshot!(
            "notice",
            json(&message_content(
                "wait",
                Style::Notice,
                &ReplyTo::Plain,
                None
            ))
        );
    }
}
