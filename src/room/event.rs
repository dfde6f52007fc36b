//! The parts of a timeline event that room sessions act on (parsed leniently: an event we do
//! not understand is skipped, never an error that blocks the room).

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};
use serde::Deserialize;

/// An event from the inbox, reduced to what decisions need.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomEvent {
    /// `m.room.member`.
    Member {
        /// Room.
        room_id: OwnedRoomId,
        /// Who sent it (the inviter for invites).
        sender: OwnedUserId,
        /// Whose membership changed.
        target: OwnedUserId,
        /// `invite`, `join`, `leave`, `ban`, `knock`.
        membership: String,
    },
    /// `m.room.message` with text.
    Text {
        /// Room.
        room_id: OwnedRoomId,
        /// Event id (receipts, deterministic reply ids).
        event_id: OwnedEventId,
        /// Author.
        sender: OwnedUserId,
        /// `m.text`, `m.notice`, `m.emote`, ...
        msgtype: String,
        /// Plain text body.
        body: String,
        /// Whether this edits an earlier message (`m.replace`).
        is_edit: bool,
    },
    /// `m.room.encrypted`: to be decrypted before anything else is decided.
    Encrypted {
        /// Room.
        room_id: OwnedRoomId,
        /// Event id.
        event_id: OwnedEventId,
        /// Author.
        sender: OwnedUserId,
    },
    /// `m.room.encryption` state: the room is encrypted from now on.
    EncryptionEnabled {
        /// Room.
        room_id: OwnedRoomId,
    },
    /// Anything else.
    Other,
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: String,
    room_id: Option<OwnedRoomId>,
    event_id: Option<OwnedEventId>,
    sender: Option<OwnedUserId>,
    state_key: Option<String>,
    #[serde(default)]
    content: serde_json::Value,
}

impl RoomEvent {
    /// The room the event belongs to, when it has one.
    pub fn room_id(&self) -> Option<&ruma::RoomId> {
        match self {
            Self::Member { room_id, .. }
            | Self::Text { room_id, .. }
            | Self::Encrypted { room_id, .. }
            | Self::EncryptionEnabled { room_id } => Some(room_id),
            Self::Other => None,
        }
    }

    /// Parses an event's JSON; events that are not understood become [`RoomEvent::Other`].
    pub fn parse(json: &str) -> Self {
        let Ok(head) = serde_json::from_str::<Head>(json) else {
            return Self::Other;
        };
        let (Some(room_id), Some(sender)) = (head.room_id, head.sender) else {
            return Self::Other;
        };
        match head.kind.as_str() {
            "m.room.member" => {
                let target = head.state_key.and_then(|k| OwnedUserId::try_from(k).ok());
                let membership = head.content.get("membership").and_then(|m| m.as_str());
                match (target, membership) {
                    (Some(target), Some(membership)) => Self::Member {
                        room_id,
                        sender,
                        target,
                        membership: membership.to_owned(),
                    },
                    _ => Self::Other,
                }
            }
            "m.room.message" => {
                let content = &head.content;
                let body = content.get("body").and_then(|b| b.as_str());
                let msgtype = content.get("msgtype").and_then(|b| b.as_str());
                let is_edit = content
                    .pointer("/m.relates_to/rel_type")
                    .and_then(|r| r.as_str())
                    .is_some_and(|r| r == "m.replace");
                match (head.event_id, body, msgtype) {
                    (Some(event_id), Some(body), Some(msgtype)) => Self::Text {
                        room_id,
                        event_id,
                        sender,
                        msgtype: msgtype.to_owned(),
                        body: body.to_owned(),
                        is_edit,
                    },
                    _ => Self::Other,
                }
            }
            "m.room.encrypted" => match head.event_id {
                Some(event_id) => Self::Encrypted {
                    room_id,
                    event_id,
                    sender,
                },
                None => Self::Other,
            },
            "m.room.encryption" if head.state_key.as_deref() == Some("") => {
                Self::EncryptionEnabled { room_id }
            }
            _ => Self::Other,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn invite_is_parsed() {
        let json = r#"{"type":"m.room.member","room_id":"!r:x","sender":"@alice:x","state_key":"@alice_ai:x","event_id":"$e","content":{"membership":"invite","is_direct":true}}"#;
        assert_eq!(
            RoomEvent::parse(json),
            RoomEvent::Member {
                room_id: "!r:x".try_into().unwrap(),
                sender: "@alice:x".try_into().unwrap(),
                target: "@alice_ai:x".try_into().unwrap(),
                membership: "invite".into(),
            }
        );
    }

    #[test]
    fn text_and_edit_are_parsed() {
        let json = r#"{"type":"m.room.message","room_id":"!r:x","sender":"@alice:x","event_id":"$e","content":{"msgtype":"m.text","body":"hi"}}"#;
        assert!(
            matches!(RoomEvent::parse(json), RoomEvent::Text { ref body, is_edit: false, .. } if body == "hi")
        );
        let edit = r#"{"type":"m.room.message","room_id":"!r:x","sender":"@alice:x","event_id":"$e","content":{"msgtype":"m.text","body":"* hi","m.relates_to":{"rel_type":"m.replace","event_id":"$d"}}}"#;
        assert!(matches!(
            RoomEvent::parse(edit),
            RoomEvent::Text { is_edit: true, .. }
        ));
    }

    #[test]
    fn hostile_or_odd_events_become_other() {
        for json in [
            "garbage",
            r#"{"type":"m.room.message"}"#,
            r#"{"type":"m.room.message","room_id":"!r:x","sender":"not-a-user","event_id":"$e","content":{"msgtype":"m.text","body":"x"}}"#,
            r#"{"type":"m.room.message","room_id":"!r:x","sender":"@a:x","event_id":"$e","content":{"body":5}}"#,
            r#"{"type":"m.room.member","room_id":"!r:x","sender":"@a:x","state_key":"","content":{"membership":"join"}}"#,
        ] {
            assert_eq!(RoomEvent::parse(json), RoomEvent::Other, "{json}");
        }
    }
}
