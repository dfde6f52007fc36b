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
        /// The member's display name, when set.
        display_name: Option<String>,
        /// Whether an invite is for a direct chat.
        is_direct: bool,
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
        /// Who and what it addresses: mentions, reply, thread.
        refs: Refs,
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
    /// An AI-to-AI protocol event (`dev.matrixos.a2a.*`), content unparsed.
    Protocol {
        /// Room.
        room_id: OwnedRoomId,
        /// Event id.
        event_id: OwnedEventId,
        /// Author.
        sender: OwnedUserId,
        /// Event type.
        event_type: String,
        /// Content, as sent.
        content: serde_json::Value,
    },
    /// `m.room.encryption` state: the room is encrypted from now on.
    EncryptionEnabled {
        /// Room.
        room_id: OwnedRoomId,
    },
    /// Anything else.
    Other,
}

/// What a message points at: the signals that a group message addresses someone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refs {
    /// `m.mentions.user_ids`.
    pub mentions: Vec<OwnedUserId>,
    /// `formatted_body`, where pills are links to `https://matrix.to/#/@user:server`.
    pub formatted_body: Option<String>,
    /// The event this replies to (`m.in_reply_to`).
    pub reply_to: Option<OwnedEventId>,
    /// The root of the thread it is in (`rel_type: m.thread`).
    pub thread_root: Option<OwnedEventId>,
}

impl Refs {
    fn parse(content: &serde_json::Value) -> Self {
        let mentions = content
            .pointer("/m.mentions/user_ids")
            .and_then(|ids| ids.as_array())
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str())
                    .filter_map(|id| OwnedUserId::try_from(id).ok())
                    .collect()
            })
            .unwrap_or_default();
        let event_id = |pointer: &str| {
            content
                .pointer(pointer)
                .and_then(|id| id.as_str())
                .and_then(|id| OwnedEventId::try_from(id).ok())
        };
        let in_thread = content
            .pointer("/m.relates_to/rel_type")
            .and_then(|r| r.as_str())
            == Some("m.thread");
        Self {
            mentions,
            formatted_body: content
                .get("formatted_body")
                .and_then(|b| b.as_str())
                .map(str::to_owned),
            reply_to: event_id("/m.relates_to/m.in_reply_to/event_id"),
            thread_root: if in_thread {
                event_id("/m.relates_to/event_id")
            } else {
                None
            },
        }
    }

    /// Whether the message mentions `user`: in `m.mentions`, as a pill, or by MXID or `name`
    /// in the text.
    pub fn mentions(&self, user: &ruma::UserId, body: &str, name: Option<&str>) -> bool {
        if self.mentions.iter().any(|m| m == user) || body.contains(user.as_str()) {
            return true;
        }
        if let Some(html) = &self.formatted_body {
            let encoded = user.as_str().replace('@', "%40").replace(':', "%3A");
            if html.contains(&format!("matrix.to/#/{}", user.as_str()))
                || html.contains(&format!("matrix.to/#/{encoded}"))
            {
                return true;
            }
        }
        name.filter(|n| n.chars().count() >= 3)
            .is_some_and(|name| body.to_lowercase().contains(&name.to_lowercase()))
    }
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
            | Self::Protocol { room_id, .. }
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
                let display_name = head
                    .content
                    .get("displayname")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned);
                let is_direct = head
                    .content
                    .get("is_direct")
                    .and_then(|d| d.as_bool())
                    .unwrap_or(false);
                match (target, membership) {
                    (Some(target), Some(membership)) => Self::Member {
                        room_id,
                        sender,
                        target,
                        membership: membership.to_owned(),
                        display_name,
                        is_direct,
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
                        refs: Refs::parse(content),
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
            kind if kind.starts_with(crate::protocol::types::PREFIX)
                && head.state_key.is_none() =>
            {
                match head.event_id {
                    Some(event_id) => Self::Protocol {
                        room_id,
                        event_id,
                        sender,
                        event_type: kind.to_owned(),
                        content: head.content,
                    },
                    None => Self::Other,
                }
            }
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
                display_name: None,
                is_direct: true,
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

    fn refs_of(json: &str) -> Refs {
        match RoomEvent::parse(json) {
            RoomEvent::Text { refs, .. } => refs,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mentions_replies_and_threads_are_parsed() {
        let refs = refs_of(
            r#"{"type":"m.room.message","room_id":"!r:x","sender":"@bob:x","event_id":"$e","content":{"msgtype":"m.text","body":"hey","m.mentions":{"user_ids":["@alice_ai:x","bad"]},"m.relates_to":{"rel_type":"m.thread","event_id":"$root","is_falling_back":true,"m.in_reply_to":{"event_id":"$prev"}}}}"#,
        );
        assert_eq!(
            refs.mentions,
            vec![OwnedUserId::try_from("@alice_ai:x").unwrap()]
        );
        assert_eq!(refs.thread_root.unwrap(), "$root");
        assert_eq!(refs.reply_to.unwrap(), "$prev");
        let reply = refs_of(
            r#"{"type":"m.room.message","room_id":"!r:x","sender":"@bob:x","event_id":"$e","content":{"msgtype":"m.text","body":"ok","m.relates_to":{"m.in_reply_to":{"event_id":"$prev"}}}}"#,
        );
        assert!(reply.thread_root.is_none());
        assert_eq!(reply.reply_to.unwrap(), "$prev");
    }

    #[test]
    fn pills_ids_and_names_count_as_mentions() {
        let twin = ruma::user_id!("@alice_ai:x");
        let pill = Refs {
            formatted_body: Some(
                r#"<a href="https://matrix.to/#/%40alice_ai%3Ax">Al</a> hi"#.into(),
            ),
            ..Refs::default()
        };
        assert!(pill.mentions(twin, "Al hi", None));
        assert!(Refs::default().mentions(twin, "ask @alice_ai:x please", None));
        assert!(Refs::default().mentions(twin, "hey Alice's AI, hi", Some("alice's ai")));
        assert!(!Refs::default().mentions(twin, "hey alice", Some("alice's ai")));
        assert!(!Refs::default().mentions(twin, "an AI, hi", Some("AI")));
    }
}
