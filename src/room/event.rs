//! Events as room sessions see them: parsed once, from the inbox's JSON, into ruma's typed
//! contents (membership as [`MembershipState`], relations as ruma's [`Relation`]), then reduced
//! to what decisions need. An event we do not understand is [`RoomEvent::Other`], never an
//! error that blocks the room.

use ruma::{
    OwnedEventId, OwnedRoomId, OwnedUserId,
    events::{
        relation::RelationType,
        room::{
            encrypted::{EncryptedEventScheme, RoomEncryptedEventContent},
            member::{MembershipState, RoomMemberEventContent},
            message::{MessageType, Relation, RoomMessageEventContent},
        },
    },
    serde::Raw,
};
use serde::Deserialize;

/// What kind of text message it is (`msgtype`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageKind {
    /// `m.text`.
    Text,
    /// `m.notice`: written by bots and services, never answered.
    Notice,
    /// `m.emote`.
    Emote,
    /// Anything else with a body (`m.file`, `m.image`, custom types); its `msgtype`.
    Other(String),
}

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
        /// The new membership.
        membership: MembershipState,
        /// The member's display name, when set.
        display_name: Option<String>,
        /// Whether an invite is for a direct chat.
        is_direct: bool,
    },
    /// `m.room.message` with a body.
    Text {
        /// Room.
        room_id: OwnedRoomId,
        /// Event id (receipts, deterministic reply ids).
        event_id: OwnedEventId,
        /// Author.
        sender: OwnedUserId,
        /// `m.text`, `m.notice`, `m.emote`, ...
        kind: MessageKind,
        /// Plain text body.
        body: String,
        /// Whether this edits an earlier message (`m.replace`).
        is_edit: bool,
        /// Who and what it addresses: mentions, reply, thread.
        refs: Refs,
        /// A mautrix bridge sent it for its author, who typed it on their phone
        /// (`fi.mau.double_puppet_source`, double puppeting).
        double_puppet: bool,
        /// The photo, file, voice message or video it carries (`body` is then its caption, or
        /// its file name when it has none).
        media: Option<crate::media::MediaRef>,
    },
    /// State a bridge puts into its portals (`m.bridge`, `uk.half-shot.bridge`,
    /// `io.element.functional_members`), content unparsed: believed only from a trusted bot.
    BridgeState {
        /// Room.
        room_id: OwnedRoomId,
        /// Who sent it.
        sender: OwnedUserId,
        /// Event type.
        event_type: String,
        /// Content, as sent.
        content: serde_json::Value,
    },
    /// `m.room.encrypted`: to be decrypted before anything else is decided.
    Encrypted {
        /// Room.
        room_id: OwnedRoomId,
        /// Event id.
        event_id: OwnedEventId,
        /// Author.
        sender: OwnedUserId,
        /// The Megolm session it was encrypted with (none for other schemes).
        session_id: Option<String>,
        /// The event as received, for the Olm machine.
        raw: EncryptedRaw,
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

/// MSC3245: an `m.audio` message recorded as a voice message.
pub const VOICE_MARK: &str = "org.matrix.msc3245.voice";

/// An encrypted event as received (compared by its JSON).
#[derive(Debug, Clone)]
pub struct EncryptedRaw(pub Raw<ruma::events::AnyTimelineEvent>);

impl PartialEq for EncryptedRaw {
    fn eq(&self, other: &Self) -> bool {
        self.0.json().get() == other.0.json().get()
    }
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
    fn of(content: &RoomMessageEventContent) -> Self {
        let (reply_to, thread_root) = match &content.relates_to {
            Some(Relation::Reply(reply)) => (Some(reply.in_reply_to.event_id.clone()), None),
            Some(Relation::Thread(thread)) => (
                thread.in_reply_to.as_ref().map(|r| r.event_id.clone()),
                Some(thread.event_id.clone()),
            ),
            _ => (None, None),
        };
        let formatted_body = match &content.msgtype {
            MessageType::Text(text) => text.formatted.as_ref().map(|f| f.body.clone()),
            MessageType::Notice(notice) => notice.formatted.as_ref().map(|f| f.body.clone()),
            MessageType::Emote(emote) => emote.formatted.as_ref().map(|f| f.body.clone()),
            _ => None,
        };
        Self {
            mentions: content
                .mentions
                .as_ref()
                .map(|m| m.user_ids.iter().cloned().collect())
                .unwrap_or_default(),
            formatted_body,
            reply_to,
            thread_root,
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

/// The envelope every event shares, typed.
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

fn content<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Option<T> {
    serde_json::from_value(value).ok()
}

impl RoomEvent {
    /// The room the event belongs to, when it has one.
    pub fn room_id(&self) -> Option<&ruma::RoomId> {
        match self {
            Self::Member { room_id, .. }
            | Self::Text { room_id, .. }
            | Self::Encrypted { room_id, .. }
            | Self::Protocol { room_id, .. }
            | Self::BridgeState { room_id, .. }
            | Self::EncryptionEnabled { room_id } => Some(room_id),
            Self::Other => None,
        }
    }

    /// A short name of what the event is, for logs (never its content).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Member { .. } => "member",
            Self::Text { .. } => "message",
            Self::Encrypted { .. } => "encrypted",
            Self::Protocol { .. } => "protocol",
            Self::BridgeState { .. } => "bridge state",
            Self::EncryptionEnabled { .. } => "encryption",
            Self::Other => "other",
        }
    }

    /// Parses a decrypted payload. Only message-like events count: a text message or a protocol
    /// event without a `state_key`. Anything else inside an encrypted envelope (a membership,
    /// the encryption state, another encrypted event, any `state_key`) is `None`: state comes
    /// from the homeserver's room state, never from what a sender encrypted.
    pub fn parse_decrypted(json: &str) -> Option<Self> {
        let head: Head = serde_json::from_str(json).ok()?;
        if head.state_key.is_some() {
            return None;
        }
        match Self::parse(json) {
            event @ (Self::Text { .. } | Self::Protocol { .. }) => Some(event),
            Self::Other => Some(Self::Other),
            Self::Member { .. }
            | Self::Encrypted { .. }
            | Self::EncryptionEnabled { .. }
            | Self::BridgeState { .. } => None,
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
        match (head.kind.as_str(), head.state_key, head.event_id) {
            ("m.room.member", Some(state_key), _) => {
                let (Ok(target), Some(member)) = (
                    OwnedUserId::try_from(state_key),
                    content::<RoomMemberEventContent>(head.content),
                ) else {
                    return Self::Other;
                };
                Self::Member {
                    room_id,
                    sender,
                    target,
                    membership: member.membership,
                    display_name: member.displayname,
                    is_direct: member.is_direct.unwrap_or(false),
                }
            }
            // A message-like type never has a state key: one that does is not a message.
            ("m.room.message", None, Some(event_id)) => {
                let double_puppet = head
                    .content
                    .get("fi.mau.double_puppet_source")
                    .is_some_and(|source| source.as_str().is_some_and(|s| !s.is_empty()));
                let voice = head.content.get(VOICE_MARK).is_some();
                let Some(message) = content::<RoomMessageEventContent>(head.content) else {
                    return Self::Other;
                };
                let kind = match &message.msgtype {
                    MessageType::Text(_) => MessageKind::Text,
                    MessageType::Notice(_) => MessageKind::Notice,
                    MessageType::Emote(_) => MessageKind::Emote,
                    other => MessageKind::Other(other.msgtype().to_owned()),
                };
                Self::Text {
                    room_id,
                    event_id,
                    sender,
                    kind,
                    body: message.msgtype.body().to_owned(),
                    // An edit without `m.new_content` is still an edit, never a new message.
                    is_edit: message.relates_to.as_ref().and_then(Relation::rel_type)
                        == Some(RelationType::Replacement),
                    refs: Refs::of(&message),
                    double_puppet,
                    media: crate::media::MediaRef::of(&message.msgtype, voice),
                }
            }
            ("m.room.encrypted", None, Some(event_id)) => {
                let Ok(raw) = Raw::from_json_string(json.to_owned()) else {
                    return Self::Other;
                };
                let raw = EncryptedRaw(raw);
                let session_id =
                    content::<RoomEncryptedEventContent>(head.content).and_then(|content| {
                        match content.scheme {
                            EncryptedEventScheme::MegolmV1AesSha2(megolm) => {
                                Some(megolm.session_id)
                            }
                            _ => None,
                        }
                    });
                Self::Encrypted {
                    room_id,
                    event_id,
                    sender,
                    session_id,
                    raw,
                }
            }
            (kind, None, Some(event_id)) if kind.starts_with(crate::protocol::types::PREFIX) => {
                Self::Protocol {
                    room_id,
                    event_id,
                    sender,
                    event_type: kind.to_owned(),
                    content: head.content,
                }
            }
            (
                kind @ (crate::bridge::portal::BRIDGE_STATE
                | crate::bridge::portal::HALF_SHOT_BRIDGE_STATE
                | crate::bridge::portal::FUNCTIONAL_MEMBERS_STATE),
                Some(_),
                _,
            ) => Self::BridgeState {
                room_id,
                sender,
                event_type: kind.to_owned(),
                content: head.content,
            },
            ("m.room.encryption", Some(key), _) if key.is_empty() => {
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
    fn decrypted_payloads_are_only_messages() {
        let member = r#"{"type":"m.room.member","room_id":"!r:x","sender":"@eve:x","state_key":"@alice_ai:x","event_id":"$e","content":{"membership":"leave"}}"#;
        assert_eq!(RoomEvent::parse_decrypted(member), None);
        let text_with_state_key = r#"{"type":"m.room.message","room_id":"!r:x","sender":"@eve:x","event_id":"$e","state_key":"","content":{"msgtype":"m.text","body":"x"}}"#;
        assert_eq!(RoomEvent::parse_decrypted(text_with_state_key), None);
        let encryption = r#"{"type":"m.room.encryption","room_id":"!r:x","sender":"@eve:x","event_id":"$e","content":{"algorithm":"m.megolm.v1.aes-sha2"}}"#;
        assert!(matches!(
            RoomEvent::parse_decrypted(encryption),
            None | Some(RoomEvent::Other)
        ));
        let text = r#"{"type":"m.room.message","room_id":"!r:x","sender":"@eve:x","event_id":"$e","content":{"msgtype":"m.text","body":"hi"}}"#;
        assert!(matches!(
            RoomEvent::parse_decrypted(text),
            Some(RoomEvent::Text { .. })
        ));
        assert_eq!(RoomEvent::parse_decrypted("not json"), None);
    }

    #[test]
    fn invite_is_parsed() {
        let json = r#"{"type":"m.room.member","room_id":"!r:x","sender":"@alice:x","state_key":"@alice_ai:x","event_id":"$e","content":{"membership":"invite","is_direct":true}}"#;
        assert_eq!(
            RoomEvent::parse(json),
            RoomEvent::Member {
                room_id: "!r:x".try_into().unwrap(),
                sender: "@alice:x".try_into().unwrap(),
                target: "@alice_ai:x".try_into().unwrap(),
                membership: MembershipState::Invite,
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
        let edit = r#"{"type":"m.room.message","room_id":"!r:x","sender":"@alice:x","event_id":"$e","content":{"msgtype":"m.text","body":"* hi","m.new_content":{"msgtype":"m.text","body":"hi"},"m.relates_to":{"rel_type":"m.replace","event_id":"$d"}}}"#;
        assert!(matches!(
            RoomEvent::parse(edit),
            RoomEvent::Text { is_edit: true, .. }
        ));
        // An edit without its new content is not a message (and never answered).
        let bare = r#"{"type":"m.room.message","room_id":"!r:x","sender":"@alice:x","event_id":"$e","content":{"msgtype":"m.text","body":"* hi","m.relates_to":{"rel_type":"m.replace","event_id":"$d"}}}"#;
        assert_eq!(RoomEvent::parse(bare), RoomEvent::Other);
    }

    #[test]
    fn media_messages_carry_their_media_and_caption() {
        let image = r#"{"type":"m.room.message","room_id":"!r:x","sender":"@alice:x","event_id":"$e","content":{"msgtype":"m.image","body":"what did I pay?","filename":"receipt.png","info":{"mimetype":"image/png","size":1234},"file":{"v":"v2","url":"mxc://x/abc","key":{"kty":"oct","alg":"A256CTR","ext":true,"k":"Voq2nkPme_x8no5-Tjq_laDAdxE6iDbxnlQXxwFPgE4","key_ops":["encrypt","decrypt"]},"iv":"i0DovxYdJEcAAAAAAAAAAA","hashes":{"sha256":"ANdt819a8bZl4jKy3Z+jcqtiNICa2y0AW4BBJ/iQRAU"}}}}"#;
        let RoomEvent::Text { body, media, .. } = RoomEvent::parse(image) else {
            panic!("not a message");
        };
        let media = media.unwrap();
        assert_eq!(body, "what did I pay?");
        assert_eq!(media.kind, crate::media::MediaKind::Image);
        assert_eq!(media.name, "receipt.png");
        assert_eq!(media.caption.as_deref(), Some("what did I pay?"));
        assert_eq!(media.mimetype.as_deref(), Some("image/png"));
        assert_eq!(media.size, Some(1234));
        assert!(media.is_encrypted() && !media.voice);

        let voice = r#"{"type":"m.room.message","room_id":"!r:x","sender":"@alice:x","event_id":"$e","content":{"msgtype":"m.audio","body":"Voice message.ogg","url":"mxc://x/v","org.matrix.msc3245.voice":{},"org.matrix.msc1767.audio":{"duration":1200}}}"#;
        let RoomEvent::Text { media, .. } = RoomEvent::parse(voice) else {
            panic!("not a message");
        };
        let media = media.unwrap();
        assert!(media.voice && !media.is_encrypted());
        assert_eq!(media.caption, None, "a file name alone is no caption");

        let text = r#"{"type":"m.room.message","room_id":"!r:x","sender":"@alice:x","event_id":"$e","content":{"msgtype":"m.text","body":"hi"}}"#;
        assert!(matches!(
            RoomEvent::parse(text),
            RoomEvent::Text { media: None, .. }
        ));
        // Media without a source is not a message we can use.
        let broken = r#"{"type":"m.room.message","room_id":"!r:x","sender":"@alice:x","event_id":"$e","content":{"msgtype":"m.file","body":"x.pdf"}}"#;
        assert!(!matches!(
            RoomEvent::parse(broken),
            RoomEvent::Text { media: Some(_), .. }
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
            // A malformed mention makes the content unreadable as a whole.
            r#"{"type":"m.room.message","room_id":"!r:x","sender":"@a:x","event_id":"$e","content":{"msgtype":"m.text","body":"x","m.mentions":{"user_ids":["bad"]}}}"#,
            // A message-like type with a state key is not a message.
            r#"{"type":"m.room.message","room_id":"!r:x","sender":"@a:x","event_id":"$e","state_key":"","content":{"msgtype":"m.text","body":"x"}}"#,
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
            r#"{"type":"m.room.message","room_id":"!r:x","sender":"@bob:x","event_id":"$e","content":{"msgtype":"m.text","body":"hey","m.mentions":{"user_ids":["@alice_ai:x"]},"m.relates_to":{"rel_type":"m.thread","event_id":"$root","is_falling_back":true,"m.in_reply_to":{"event_id":"$prev"}}}}"#,
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
