//! Messages streamed by edits: a first message, edits of it (`m.replace`) while the answer
//! is written, each marked live (MSC4357), and a final edit without the mark.

use ruma::{
    OwnedEventId, RoomId, TransactionId, UserId,
    events::{
        Mentions,
        room::message::{ReplacementMetadata, RoomMessageEventContent},
    },
};

use super::Outbox;
use crate::room::RoomError;

/// MSC4357: on a message and its edits while it is still being written.
pub const LIVE_MARKER: &str = "org.matrix.msc4357.live";

impl Outbox {
    /// Sends `content` as a new message of `twin`, marked live when `live` (recorded as the
    /// twin's, like [`Outbox::send_message`]).
    pub async fn send_live(
        &self,
        twin: &UserId,
        room: &RoomId,
        txn_id: &TransactionId,
        content: RoomMessageEventContent,
        live: bool,
    ) -> Result<OwnedEventId, RoomError> {
        if !live {
            return self.send_message(twin, room, txn_id, content).await;
        }
        let json = with_marker(&content, true)?;
        let event_id = self
            .send_raw(twin, room, txn_id, "m.room.message", &json)
            .await?;
        if let Err(err) = self.store.add_twin_event(room, &event_id, twin, None).await {
            tracing::warn!(%err, "cannot record a sent event");
        }
        Ok(event_id)
    }

    /// Replaces the text of `original` (a message of `twin`) with `content`; marked live when
    /// `live`. `mentions`: those of the original, so that nobody is notified again.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_edit(
        &self,
        twin: &UserId,
        room: &RoomId,
        txn_id: &TransactionId,
        original: &OwnedEventId,
        mentions: Option<Mentions>,
        content: RoomMessageEventContent,
        live: bool,
    ) -> Result<OwnedEventId, RoomError> {
        let edit = content.make_replacement(ReplacementMetadata::new(original.clone(), mentions));
        let json = with_marker(&edit, live)?;
        self.send_raw(twin, room, txn_id, "m.room.message", &json)
            .await
    }
}

/// The JSON of `content`, with the live mark at the top and in `m.new_content` when `live`.
fn with_marker(
    content: &RoomMessageEventContent,
    live: bool,
) -> Result<serde_json::Value, RoomError> {
    let mut json = serde_json::to_value(content)
        .map_err(|e| RoomError::Internal(format!("cannot serialize a message: {e}")))?;
    if live && let Some(map) = json.as_object_mut() {
        map.insert(LIVE_MARKER.to_owned(), serde_json::json!({}));
        if let Some(new) = map.get_mut("m.new_content").and_then(|v| v.as_object_mut()) {
            new.insert(LIVE_MARKER.to_owned(), serde_json::json!({}));
        }
    }
    Ok(json)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use ruma::{owned_event_id, user_id};

    use super::*;
    use crate::outbox::{ReplyTo, Style, message_content};

    #[test]
    fn live_messages_and_edits_on_the_wire() {
        let bob = user_id!("@bob:x");
        let first = message_content(
            "Let me",
            Style::Answer,
            &ReplyTo::Reply(owned_event_id!("$q")),
            Some(bob),
        );
        insta::assert_json_snapshot!("live_first", with_marker(&first, true).unwrap());
        let mentions = first.mentions.clone();
        let edit = message_content("Let me **see**", Style::Answer, &ReplyTo::Plain, Some(bob))
            .make_replacement(ReplacementMetadata::new(owned_event_id!("$a"), mentions));
        insta::assert_json_snapshot!("live_edit", with_marker(&edit, true).unwrap());
        insta::assert_json_snapshot!("final_edit", with_marker(&edit, false).unwrap());
    }
}
