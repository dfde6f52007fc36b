//! What a room session does about an event: a pure function, tested without any I/O.

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, UserId};

use super::event::RoomEvent;
use crate::matrix::TwinNaming;

/// Facts about the world a decision needs.
pub struct Context<'a> {
    /// How twin IDs are formed.
    pub naming: &'a TwinNaming,
    /// Whether a user may have a twin.
    pub may_have_twin: &'a (dyn Fn(&UserId) -> bool + Sync),
    /// Twins joined to the room of the event.
    pub joined_twins: &'a [OwnedUserId],
}

/// Something a room session should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Accept the owner's invite.
    Join {
        /// The twin.
        twin: OwnedUserId,
        /// The room.
        room: OwnedRoomId,
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
        membership: String,
    },
    /// Run a kernel turn for the twin and post the reply.
    Turn {
        /// The twin that answers.
        twin: OwnedUserId,
        /// Its owner.
        owner: OwnedUserId,
        /// The room.
        room: OwnedRoomId,
        /// The message answered.
        event_id: OwnedEventId,
        /// Who wrote it.
        sender: OwnedUserId,
        /// What it says.
        text: String,
    },
}

/// Decides what to do about `event`.
pub fn decide(event: &RoomEvent, ctx: &Context<'_>) -> Vec<Action> {
    match event {
        RoomEvent::Member {
            room_id,
            sender,
            target,
            membership,
        } => {
            let Some(owner) = ctx.naming.owner_of(target) else {
                return vec![];
            };
            let mut actions = vec![Action::RecordMembership {
                twin: target.clone(),
                room: room_id.clone(),
                membership: membership.clone(),
            }];
            if membership == "invite" {
                if *sender == owner && (ctx.may_have_twin)(&owner) {
                    actions.push(Action::Join {
                        twin: target.clone(),
                        room: room_id.clone(),
                    });
                } else {
                    actions.push(Action::Decline {
                        twin: target.clone(),
                        room: room_id.clone(),
                        reason: format!("Only {owner} can invite their AI twin into rooms."),
                    });
                }
            }
            actions
        }
        RoomEvent::Text {
            room_id,
            event_id,
            sender,
            msgtype,
            body,
            is_edit,
        } => {
            // Never answer a twin (ourselves included), bots' notices, or edits.
            if ctx.naming.is_twin(sender)
                || *is_edit
                || msgtype == "m.notice"
                || body.trim().is_empty()
            {
                return vec![];
            }
            ctx.joined_twins
                .iter()
                .filter_map(|twin| {
                    let owner = ctx.naming.owner_of(twin)?;
                    (owner == *sender).then(|| Action::Turn {
                        twin: twin.clone(),
                        owner,
                        room: room_id.clone(),
                        event_id: event_id.clone(),
                        sender: sender.clone(),
                        text: body.clone(),
                    })
                })
                .collect()
        }
        // Decrypted (or recorded) by the room session before deciding.
        RoomEvent::Encrypted { .. } | RoomEvent::EncryptionEnabled { .. } | RoomEvent::Other => {
            vec![]
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use ruma::{owned_event_id, owned_room_id, owned_user_id};

    use super::*;

    fn naming() -> TwinNaming {
        TwinNaming::new("_ai", "x")
    }

    fn member(sender: &str, target: &str, membership: &str) -> RoomEvent {
        RoomEvent::Member {
            room_id: owned_room_id!("!r:x"),
            sender: sender.try_into().unwrap(),
            target: target.try_into().unwrap(),
            membership: membership.into(),
        }
    }

    fn text(sender: &str, body: &str) -> RoomEvent {
        RoomEvent::Text {
            room_id: owned_room_id!("!r:x"),
            event_id: owned_event_id!("$e"),
            sender: sender.try_into().unwrap(),
            msgtype: "m.text".into(),
            body: body.into(),
            is_edit: false,
        }
    }

    fn run(event: &RoomEvent, joined: &[OwnedUserId]) -> Vec<Action> {
        let naming = naming();
        let allowed = |u: &UserId| u.server_name() == "x";
        decide(
            event,
            &Context {
                naming: &naming,
                may_have_twin: &allowed,
                joined_twins: joined,
            },
        )
    }

    #[test]
    fn owner_invite_is_accepted() {
        let actions = run(&member("@alice:x", "@alice_ai:x", "invite"), &[]);
        assert!(actions.contains(&Action::Join {
            twin: owned_user_id!("@alice_ai:x"),
            room: owned_room_id!("!r:x")
        }));
    }

    #[test]
    fn stranger_invite_is_declined_with_reason() {
        let actions = run(&member("@mallory:x", "@alice_ai:x", "invite"), &[]);
        let decline = actions.iter().find_map(|a| match a {
            Action::Decline { reason, .. } => Some(reason.clone()),
            _ => None,
        });
        assert!(decline.unwrap().contains("@alice:x"));
        assert!(!actions.iter().any(|a| matches!(a, Action::Join { .. })));
    }

    #[test]
    fn invite_of_a_disallowed_owner_is_declined() {
        let naming = naming();
        let nobody = |_: &UserId| false;
        let actions = decide(
            &member("@alice:x", "@alice_ai:x", "invite"),
            &Context {
                naming: &naming,
                may_have_twin: &nobody,
                joined_twins: &[],
            },
        );
        assert!(actions.iter().any(|a| matches!(a, Action::Decline { .. })));
    }

    #[test]
    fn owner_message_starts_a_turn_others_do_not() {
        let joined = [owned_user_id!("@alice_ai:x")];
        assert!(matches!(
            run(&text("@alice:x", "hi"), &joined)[..],
            [Action::Turn { .. }]
        ));
        assert!(run(&text("@bob:x", "hi"), &joined).is_empty());
        assert!(run(&text("@alice:x", "hi"), &[]).is_empty());
    }

    #[test]
    fn twins_never_answer_twins_or_themselves() {
        let joined = [owned_user_id!("@alice_ai:x")];
        assert!(run(&text("@alice_ai:x", "hi"), &joined).is_empty());
        assert!(run(&text("@bob_ai:x", "hi"), &joined).is_empty());
    }

    #[test]
    fn membership_of_non_twins_is_ignored() {
        assert!(run(&member("@alice:x", "@bob:x", "invite"), &[]).is_empty());
    }
}
