//! One kernel turn in a room: typing, read receipt, history, kernel, transcript, reply.

use std::time::Duration;

use ruma::{EventId, RoomId, UserId, events::AnyMessageLikeEventContent};
use tokio::sync::oneshot;

use super::{RoomError, Rooms, render_markdown};
use crate::{
    kernel::{Audience, Message, Turn},
    matrix::{MatrixClient, txn_id_for},
};

/// Typing notices last this long and are refreshed before they run out.
const TYPING_TIMEOUT: Duration = Duration::from_secs(30);
const TYPING_REFRESH: Duration = Duration::from_secs(20);

impl Rooms {
    pub(super) async fn run_turn(
        &self,
        twin_id: &UserId,
        owner: &UserId,
        room: &RoomId,
        event_id: &EventId,
        sender: &UserId,
        text: &str,
    ) -> Result<(), RoomError> {
        let twin = self.twins.ensure(owner).await?;
        if let Err(err) = self.matrix.mark_read(twin_id, room, event_id).await {
            tracing::debug!(%err, "read receipt failed");
        }
        let stop_typing = spawn_typing(self.matrix.clone(), twin_id.to_owned(), room.to_owned());

        let session = self
            .store
            .current_session(room.as_str(), twin_id.as_str())
            .await?;
        let history: Vec<Message> = self
            .store
            .recent_messages(session.id, self.history_limit as i64)
            .await?
            .iter()
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect();

        let outcome = {
            let _slot = self
                .turn_slots
                .acquire()
                .await
                .map_err(|e| RoomError::Internal(e.to_string()))?;
            self.kernel
                .run_turn(
                    twin.home.clone(),
                    Turn {
                        room_id: room.to_string(),
                        history,
                        input: text.to_owned(),
                        audience: Audience::Owner,
                        allowed_tools: None,
                        model: None,
                    },
                )
                .await
        };
        let (reply, messages) = match outcome {
            Ok(outcome) => (outcome.reply, outcome.messages),
            Err(err) => {
                tracing::warn!(%room, %err, "turn failed");
                (
                    err.user_message(),
                    vec![Message::User {
                        content: text.to_owned(),
                    }],
                )
            }
        };

        let stored: Vec<String> = messages
            .iter()
            .filter_map(|m| serde_json::to_string(m).ok())
            .collect();
        self.store.append_messages(session.id, &stored).await?;
        let home = twin.home.clone();
        let room_name = room.to_string();
        let lines: Vec<serde_json::Value> = messages
            .iter()
            .map(|message| {
                serde_json::json!({
                    "ts": now_millis(),
                    "event_id": event_id.as_str(),
                    "sender": sender.as_str(),
                    "message": message,
                })
            })
            .collect();
        tokio::task::spawn_blocking(move || -> Result<(), crate::home::HomeError> {
            for line in &lines {
                home.append_transcript(&room_name, line)?;
            }
            home.commit(&format!("session: conversation in {room_name}"))?;
            Ok(())
        })
        .await
        .map_err(|e| RoomError::Internal(e.to_string()))??;

        let _ = stop_typing.send(());
        let content = render_markdown(&reply);
        let txn_id = txn_id_for(twin_id.as_str(), event_id.as_str(), 0);
        self.send_content(
            twin_id,
            room,
            &txn_id,
            &AnyMessageLikeEventContent::RoomMessage(content),
        )
        .await?;
        if let Err(err) = self.matrix.set_typing(twin_id, room, None).await {
            tracing::debug!(%err, "stopping typing failed");
        }
        Ok(())
    }
}

impl Rooms {
    /// Sends an event as the twin: encrypted when the room is (the room key is shared with every
    /// joined and invited device first), plaintext only in rooms known to be unencrypted. If the
    /// room's state cannot be read or encryption fails, nothing is sent.
    pub(super) async fn send_content(
        &self,
        twin: &UserId,
        room: &RoomId,
        txn_id: &ruma::TransactionId,
        content: &AnyMessageLikeEventContent,
    ) -> Result<(), RoomError> {
        let encrypted = match self.store.room_encrypted(room.as_str()).await? {
            Some(encrypted) => encrypted,
            None => {
                let encrypted = self.matrix.room_is_encrypted(twin, room).await?;
                self.store
                    .set_room_encrypted(room.as_str(), encrypted)
                    .await?;
                encrypted
            }
        };
        if encrypted {
            let members = self.matrix.room_members(twin, room).await?;
            self.crypto
                .send_encrypted(twin, room, &members, content, txn_id)
                .await?;
        } else {
            self.matrix.send_event(twin, room, txn_id, content).await?;
        }
        Ok(())
    }
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Shows the twin typing until the returned sender fires (or is dropped).
fn spawn_typing(
    matrix: MatrixClient,
    twin: ruma::OwnedUserId,
    room: ruma::OwnedRoomId,
) -> oneshot::Sender<()> {
    let (tx, mut rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            if let Err(err) = matrix.set_typing(&twin, &room, Some(TYPING_TIMEOUT)).await {
                tracing::debug!(%err, "typing notice failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(TYPING_REFRESH) => {}
                _ = &mut rx => return,
            }
        }
    });
    tx
}
