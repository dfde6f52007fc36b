//! What a room session does about an event: a pure function, tested without any I/O.
//!
//! The session gathers the facts (who is in the room, each twin's access policy and room
//! settings, whether the message replies to a twin or is in its thread) and [`decide`] turns
//! them into [`Action`]s. Stateful limits (rate limits, the bot-to-bot bound) are applied when
//! the actions run.

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, UserId, events::room::member::MembershipState};

use super::{
    command::{self, Command},
    event::{MessageKind, RoomEvent},
};
pub use crate::outbox::ReplyTo;
use crate::{
    bridge::{Bridges, PortalMode},
    matrix::TwinNaming,
    policy::{AccessPolicy, RoomSettings},
};

/// One twin's side of the room, as the session found it.
pub struct TwinView<'a> {
    /// The twin.
    pub twin: &'a UserId,
    /// Its owner.
    pub owner: &'a UserId,
    /// Whether the twin is joined (an invited twin only decides about its invite).
    pub joined: bool,
    /// The owner's access policy.
    pub access: &'a AccessPolicy,
    /// The settings of this room.
    pub settings: &'a RoomSettings,
    /// The twin's display name (a mention by name addresses it).
    pub display_name: Option<&'a str>,
    /// The message replies to an event this twin sent.
    pub replied_to: bool,
    /// The message is in a thread this twin took part in.
    pub in_thread: bool,
    /// The room is a portal of a trusted bridge: how the twin stands in it.
    pub portal: Option<PortalSide<'a>>,
}

/// A twin's side of a portal (a bridged chat).
#[derive(Debug, Clone, Copy)]
pub struct PortalSide<'a> {
    /// What the owner chose for it (`system/bridges.toml`, `!ai bridge ...`).
    pub mode: PortalMode,
    /// Nobody but the owner (their Matrix ID, their own ghosts), the bridge bot and twins is
    /// in it: the owner's note-to-self chat, where the twin answers the owner as in its DM.
    pub owner_chat: bool,
    /// The owner's own ghosts on the portal's network: they count as the owner.
    pub owner_ghosts: &'a [OwnedUserId],
    /// The owner answered there lately: the human is on it, the twin stays quiet.
    pub quiet: bool,
}

/// Facts about the world a decision needs.
pub struct Context<'a> {
    /// How twin IDs are formed.
    pub naming: &'a TwinNaming,
    /// Whether a user may have a twin.
    pub may_have_twin: &'a (dyn Fn(&UserId) -> bool + Sync),
    /// The twins of the room (joined), plus the target of a twin's membership event.
    pub twins: &'a [TwinView<'a>],
    /// People joined to or invited into the room, twins included.
    pub member_count: usize,
    /// Whether the event arrived encrypted (protocol events count only then).
    pub arrived_encrypted: bool,
    /// The trusted bridges (their bots are bots, their ghosts never twins).
    pub bridges: &'a Bridges,
}

/// Who the twin is talking to in a turn: the call-center rule keys off this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// The twin's owner: full context and tools.
    Owner,
    /// Anyone else: public context only.
    Other,
}

/// A message a twin answers with a kernel turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnJob {
    /// The twin that answers.
    pub twin: OwnedUserId,
    /// Its owner.
    pub owner: OwnedUserId,
    /// The room.
    pub room: OwnedRoomId,
    /// The message answered.
    pub event_id: OwnedEventId,
    /// Who wrote it.
    pub sender: OwnedUserId,
    /// What it says.
    pub text: String,
    /// Owner or someone else.
    pub speaker: Speaker,
    /// Where the answer goes.
    pub reply: ReplyTo,
    /// The room has more than two members.
    pub group: bool,
    /// The sender is a bot or another twin (bounded bot-to-bot turns).
    pub from_bot: bool,
    /// The photo, file, voice message or video the message carries (`text` is then its
    /// caption or file name).
    pub media: Option<crate::media::MediaRef>,
}

/// Something a room session should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Accept an invite.
    Join {
        /// The twin.
        twin: OwnedUserId,
        /// The room.
        room: OwnedRoomId,
        /// Whether the owner themself invited the twin into a direct chat: the one way,
        /// besides the twin's own new DM, a room becomes the owner's DM.
        direct_from_owner: bool,
    },
    /// Refuse an invite, telling the inviter why.
    Decline {
        /// The twin.
        twin: OwnedUserId,
        /// The room.
        room: OwnedRoomId,
        /// Shown to the inviter.
        reason: String,
    },
    /// Remember a twin's membership change.
    RecordMembership {
        /// The twin.
        twin: OwnedUserId,
        /// The room.
        room: OwnedRoomId,
        /// New membership.
        membership: MembershipState,
    },
    /// Run a kernel turn for the twin and post the reply.
    Turn(TurnJob),
    /// Run a command.
    Command {
        /// The twin.
        twin: OwnedUserId,
        /// Its owner.
        owner: OwnedUserId,
        /// The room.
        room: OwnedRoomId,
        /// The command message.
        event_id: OwnedEventId,
        /// Who gave it.
        sender: OwnedUserId,
        /// What it is.
        command: Command,
    },
    /// A stranger wrote in a DM: ask the owner, tell the stranger to wait.
    Pairing {
        /// The twin.
        twin: OwnedUserId,
        /// Its owner.
        owner: OwnedUserId,
        /// The stranger's DM.
        room: OwnedRoomId,
        /// Their message.
        event_id: OwnedEventId,
        /// The stranger.
        sender: OwnedUserId,
        /// What they wrote.
        text: String,
    },
    /// An AI-to-AI protocol event for the twin's negotiation.
    Protocol {
        /// The twin.
        twin: OwnedUserId,
        /// Its owner.
        owner: OwnedUserId,
        /// The room.
        room: OwnedRoomId,
        /// The event.
        event_id: OwnedEventId,
        /// The other twin.
        sender: OwnedUserId,
        /// Its type.
        event_type: String,
        /// Its content.
        content: serde_json::Value,
    },
    /// The owner wrote in a portal where the twin answers for them: it stays quiet there for
    /// a while.
    OwnerAnswered {
        /// The twin.
        twin: OwnedUserId,
        /// The portal.
        room: OwnedRoomId,
    },
    /// Tell someone, once, that the twin will not answer them here.
    Refuse {
        /// The twin.
        twin: OwnedUserId,
        /// Its owner.
        owner: OwnedUserId,
        /// The room.
        room: OwnedRoomId,
        /// The message refused.
        event_id: OwnedEventId,
        /// Who wrote it.
        sender: OwnedUserId,
    },
}

impl Action {
    /// A short name of the action, for logs (never the message it is about).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Join { .. } => "join",
            Self::Decline { .. } => "decline",
            Self::RecordMembership { .. } => "record membership",
            Self::Turn(_) => "turn",
            Self::Command { .. } => "command",
            Self::Pairing { .. } => "pairing",
            Self::Protocol { .. } => "protocol event",
            Self::OwnerAnswered { .. } => "owner answered",
            Self::Refuse { .. } => "refuse",
        }
    }
}

/// Whether `user` is a twin of any matrix-os server (same suffix convention) or a bot the
/// policy names.
fn is_bot(ctx: &Context<'_>, view: &TwinView<'_>, user: &UserId) -> bool {
    ctx.naming.is_twin(user)
        || ctx.naming.looks_like_twin(user)
        || view.access.is_bot(user)
        || ctx.bridges.is_bot(user)
}

/// Decides what to do about `event`.
pub fn decide(event: &RoomEvent, ctx: &Context<'_>) -> Vec<Action> {
    match event {
        RoomEvent::Member {
            room_id,
            sender,
            target,
            membership,
            is_direct,
            ..
        } => {
            let Some(owner) = ctx.naming.owner_of(target) else {
                return vec![];
            };
            let mut actions = vec![Action::RecordMembership {
                twin: target.clone(),
                room: room_id.clone(),
                membership: membership.clone(),
            }];
            if *membership == MembershipState::Invite {
                let view = ctx
                    .twins
                    .iter()
                    .find(|v| v.twin.as_str() == target.as_str());
                let allowed = (ctx.may_have_twin)(&owner)
                    && view.is_some_and(|view| {
                        !view.access.is_blocked(sender)
                            && (view.access.may_invite(sender)
                                // A stranger's DM is joined to answer (pairing or notice).
                                || (*is_direct
                                    && (view.access.may_dm(sender) || view.access.pairing()))
                                // Another twin opening a negotiation room: the protocol
                                // answers it (a typed decline when it is not allowed).
                                || (*is_direct && ctx.naming.looks_like_twin(sender)))
                    });
                if allowed {
                    actions.push(Action::Join {
                        twin: target.clone(),
                        room: room_id.clone(),
                        direct_from_owner: *is_direct && *sender == owner,
                    });
                } else {
                    actions.push(Action::Decline {
                        twin: target.clone(),
                        room: room_id.clone(),
                        reason: format!(
                            "{owner}'s AI twin only joins rooms {owner} allows; ask {owner}."
                        ),
                    });
                }
            }
            actions
        }
        RoomEvent::Text {
            room_id,
            event_id,
            sender,
            kind,
            body,
            is_edit,
            refs,
            double_puppet: _,
            media,
        } => {
            // Never edits, notices (bots' and our own), or empty messages.
            if *is_edit || *kind == MessageKind::Notice || body.trim().is_empty() {
                return vec![];
            }
            let group = ctx.member_count > 2;
            let mut actions = Vec::new();
            for view in ctx.twins.iter().filter(|v| v.joined) {
                if sender == view.twin || view.access.is_blocked(sender) {
                    continue;
                }
                if let Some(portal) = &view.portal {
                    let message = PortalMessage {
                        room_id,
                        event_id,
                        sender,
                        body,
                        media,
                    };
                    actions.extend(in_portal(ctx, view, portal, &message));
                    continue;
                }
                let is_owner = sender == view.owner;
                let from_bot = !is_owner && is_bot(ctx, view, sender);
                let addressed = refs.mentions(view.twin, body, view.display_name)
                    || view.replied_to
                    || view.in_thread;
                let twin = view.twin.to_owned();
                let owner = view.owner.to_owned();
                let room = room_id.clone();
                let may_talk = if group {
                    view.settings.may_address(sender, view.access)
                } else {
                    view.access.may_dm(sender)
                };

                // A caption is never a command: `!ai ...` under a photo is words about it.
                if !from_bot
                    && media.is_none()
                    && let Some(command) = command::parse(body, !group && is_owner)
                {
                    if group && !is_owner && !addressed {
                        continue;
                    }
                    if is_owner || may_talk {
                        actions.push(Action::Command {
                            twin,
                            owner,
                            room,
                            event_id: event_id.clone(),
                            sender: sender.clone(),
                            command,
                        });
                        continue;
                    }
                }

                let reply = match (&refs.thread_root, group) {
                    (Some(root), _) => ReplyTo::Thread {
                        root: root.clone(),
                        event: event_id.clone(),
                    },
                    (None, true) => ReplyTo::Reply(event_id.clone()),
                    (None, false) => ReplyTo::Plain,
                };
                let turn = Action::Turn(TurnJob {
                    twin: twin.clone(),
                    owner: owner.clone(),
                    room: room.clone(),
                    event_id: event_id.clone(),
                    sender: sender.clone(),
                    text: body.clone(),
                    speaker: if is_owner {
                        Speaker::Owner
                    } else {
                        Speaker::Other
                    },
                    reply,
                    group,
                    from_bot,
                    media: media.clone(),
                });
                if !group {
                    if is_owner || may_talk {
                        actions.push(turn);
                    } else if from_bot {
                        // Unknown bots in a DM get nothing: no notice ping-pong.
                    } else if view.access.pairing() {
                        actions.push(Action::Pairing {
                            twin,
                            owner,
                            room,
                            event_id: event_id.clone(),
                            sender: sender.clone(),
                            text: body.clone(),
                        });
                    } else {
                        actions.push(Action::Refuse {
                            twin,
                            owner,
                            room,
                            event_id: event_id.clone(),
                            sender: sender.clone(),
                        });
                    }
                    continue;
                }
                if !addressed && !view.settings.unprompted {
                    continue;
                }
                if is_owner || may_talk {
                    actions.push(turn);
                } else if addressed && !from_bot {
                    actions.push(Action::Refuse {
                        twin,
                        owner,
                        room,
                        event_id: event_id.clone(),
                        sender: sender.clone(),
                    });
                }
            }
            actions
        }
        // Bridge state is recorded by the room session, never acted on.
        RoomEvent::BridgeState { .. } => vec![],
        // The protocol is spoken encrypted only (docs/protocol.md): a plaintext event is
        // somebody else's (a homeserver's or a stranger's) and is ignored.
        RoomEvent::Protocol { .. } if !ctx.arrived_encrypted => vec![],
        RoomEvent::Protocol {
            room_id,
            event_id,
            sender,
            event_type,
            content,
        } => ctx
            .twins
            .iter()
            // Bridged chats carry no AI-to-AI protocol: the bridge cannot deliver it.
            .filter(|v| v.joined && v.portal.is_none() && v.twin != sender.as_ref() as &UserId)
            .filter(|v| !v.access.is_blocked(sender))
            .map(|v| Action::Protocol {
                twin: v.twin.to_owned(),
                owner: v.owner.to_owned(),
                room: room_id.clone(),
                event_id: event_id.clone(),
                sender: sender.clone(),
                event_type: event_type.clone(),
                content: content.clone(),
            })
            .collect(),
        // Decrypted (or recorded) by the room session before deciding.
        RoomEvent::Encrypted { .. } | RoomEvent::EncryptionEnabled { .. } | RoomEvent::Other => {
            vec![]
        }
    }
}

/// A text message in a portal.
struct PortalMessage<'a> {
    room_id: &'a OwnedRoomId,
    event_id: &'a OwnedEventId,
    sender: &'a OwnedUserId,
    body: &'a String,
    media: &'a Option<crate::media::MediaRef>,
}

/// What a twin does about a message in a portal. Nothing the owner did not allow there: the
/// owner's note-to-self chat is answered like the twin's DM; in a portal set to `answer`, the
/// owner's contacts get public turns (replies, never threads: bridges cannot carry threads)
/// until the owner answers there themself; anything else is only read. No refusals and no
/// notices: a bridge's relay would drop or forward them.
fn in_portal(
    ctx: &Context<'_>,
    view: &TwinView<'_>,
    portal: &PortalSide<'_>,
    message: &PortalMessage<'_>,
) -> Vec<Action> {
    let sender = message.sender;
    let is_owner = sender == view.owner || portal.owner_ghosts.iter().any(|g| g == sender);
    if !is_owner && (is_bot(ctx, view, sender) || portal.mode != PortalMode::Answer) {
        return Vec::new();
    }
    let twin = view.twin.to_owned();
    let owner = view.owner.to_owned();
    let room = message.room_id.clone();
    if is_owner {
        if let Some(command) = message
            .media
            .is_none()
            .then(|| command::parse(message.body, portal.owner_chat))
            .flatten()
        {
            return vec![Action::Command {
                twin,
                owner: owner.clone(),
                room,
                event_id: message.event_id.clone(),
                sender: owner,
                command,
            }];
        }
        if portal.owner_chat {
            return vec![Action::Turn(TurnJob {
                twin,
                owner: owner.clone(),
                room,
                event_id: message.event_id.clone(),
                sender: owner,
                text: message.body.clone(),
                speaker: Speaker::Owner,
                reply: ReplyTo::Plain,
                group: false,
                from_bot: false,
                media: message.media.clone(),
            })];
        }
        if portal.mode == PortalMode::Answer {
            return vec![Action::OwnerAnswered { twin, room }];
        }
        return Vec::new();
    }
    if portal.owner_chat || portal.quiet {
        return Vec::new();
    }
    vec![Action::Turn(TurnJob {
        twin,
        owner,
        room,
        event_id: message.event_id.clone(),
        sender: sender.clone(),
        text: message.body.clone(),
        speaker: Speaker::Other,
        reply: ReplyTo::Reply(message.event_id.clone()),
        group: true,
        from_bot: false,
        media: message.media.clone(),
    })]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[path = "decide_tests.rs"]
mod tests;
