use ruma::{events::room::member::MembershipState, owned_event_id, owned_room_id, user_id};

use super::*;
use crate::{
    config::AccessConfig,
    policy::{AccessFile, AccessPolicy, RoomSettings},
    room::event::{MessageKind, Refs},
};

fn naming() -> TwinNaming {
    TwinNaming::new("_ai", "x")
}

fn member(sender: &str, target: &str, membership: &str, is_direct: bool) -> RoomEvent {
    RoomEvent::Member {
        room_id: owned_room_id!("!r:x"),
        sender: sender.try_into().unwrap(),
        target: target.try_into().unwrap(),
        membership: MembershipState::from(membership),
        display_name: None,
        is_direct,
    }
}

fn text_with(sender: &str, body: &str, refs: Refs) -> RoomEvent {
    RoomEvent::Text {
        room_id: owned_room_id!("!r:x"),
        event_id: owned_event_id!("$e"),
        sender: sender.try_into().unwrap(),
        kind: MessageKind::Text,
        body: body.into(),
        is_edit: false,
        refs,
        double_puppet: false,
        media: None,
    }
}

fn text(sender: &str, body: &str) -> RoomEvent {
    text_with(sender, body, Refs::default())
}

/// One twin (alice's) with the given policy and settings.
struct World {
    access: AccessPolicy,
    settings: RoomSettings,
    joined: bool,
    replied_to: bool,
    in_thread: bool,
    encrypted: bool,
}

impl World {
    fn new(file: AccessFile) -> Self {
        Self {
            access: AccessPolicy::new(user_id!("@alice:x"), file, &AccessConfig::default())
                .unwrap(),
            settings: RoomSettings::default(),
            joined: true,
            replied_to: false,
            in_thread: false,
            encrypted: false,
        }
    }

    fn owner_only() -> Self {
        Self::new(AccessFile::default())
    }

    fn run(&self, event: &RoomEvent, members: usize) -> Vec<Action> {
        let naming = naming();
        let allowed = |u: &UserId| u.server_name() == "x";
        let views = [TwinView {
            twin: user_id!("@alice_ai:x"),
            owner: user_id!("@alice:x"),
            joined: self.joined,
            access: &self.access,
            settings: &self.settings,
            display_name: Some("alice's AI"),
            replied_to: self.replied_to,
            in_thread: self.in_thread,
            portal: None,
        }];
        decide(
            event,
            &Context {
                naming: &naming,
                may_have_twin: &allowed,
                twins: &views,
                member_count: members,
                arrived_encrypted: self.encrypted,
                bridges: &crate::bridge::Bridges::default(),
            },
        )
    }
}

fn turn_of(actions: &[Action]) -> Option<(Speaker, ReplyTo, bool)> {
    actions.iter().find_map(|a| match a {
        Action::Turn(job) => Some((job.speaker, job.reply.clone(), job.from_bot)),
        _ => None,
    })
}

#[test]
fn owner_invite_is_accepted_strangers_group_invite_declined() {
    let mut world = World::owner_only();
    world.joined = false;
    let actions = world.run(&member("@alice:x", "@alice_ai:x", "invite", false), 2);
    assert!(actions.iter().any(|a| matches!(a, Action::Join { .. })));
    let actions = world.run(&member("@mallory:x", "@alice_ai:x", "invite", false), 2);
    let reason = actions.iter().find_map(|a| match a {
        Action::Decline { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(reason.unwrap().contains("@alice:x"));
}

#[test]
fn a_strangers_dm_invite_is_joined_for_pairing_unless_blocked_or_pairing_is_off() {
    let mut world = World::owner_only();
    world.joined = false;
    let dm = member("@bob:y", "@alice_ai:x", "invite", true);
    assert!(
        world
            .run(&dm, 2)
            .iter()
            .any(|a| matches!(a, Action::Join { .. }))
    );
    let mut blocked = World::new(AccessFile {
        blocked: vec!["@bob:y".into()],
        ..AccessFile::default()
    });
    blocked.joined = false;
    assert!(
        blocked
            .run(&dm, 2)
            .iter()
            .any(|a| matches!(a, Action::Decline { .. }))
    );
    let mut closed = World::new(AccessFile {
        pairing: Some(false),
        ..AccessFile::default()
    });
    closed.joined = false;
    assert!(
        closed
            .run(&dm, 2)
            .iter()
            .any(|a| matches!(a, Action::Decline { .. }))
    );
}

#[test]
fn invite_of_a_disallowed_owner_is_declined() {
    let naming = naming();
    let nobody = |_: &UserId| false;
    let world = World::owner_only();
    let views = [TwinView {
        twin: user_id!("@alice_ai:x"),
        owner: user_id!("@alice:x"),
        joined: false,
        access: &world.access,
        settings: &world.settings,
        display_name: None,
        replied_to: false,
        in_thread: false,
        portal: None,
    }];
    let actions = decide(
        &member("@alice:x", "@alice_ai:x", "invite", true),
        &Context {
            naming: &naming,
            may_have_twin: &nobody,
            twins: &views,
            member_count: 2,
            arrived_encrypted: false,
            bridges: &crate::bridge::Bridges::default(),
        },
    );
    assert!(actions.iter().any(|a| matches!(a, Action::Decline { .. })));
}

#[test]
fn in_a_dm_the_owner_gets_a_turn_and_a_stranger_a_pairing() {
    let world = World::owner_only();
    let (speaker, reply, bot) = turn_of(&world.run(&text("@alice:x", "hi"), 2)).unwrap();
    assert_eq!(
        (speaker, reply, bot),
        (Speaker::Owner, ReplyTo::Plain, false)
    );
    assert!(matches!(
        world.run(&text("@bob:y", "hi"), 2)[..],
        [Action::Pairing { .. }]
    ));
    let open = World::new(AccessFile {
        dm: vec!["@*:y".into()],
        ..AccessFile::default()
    });
    let (speaker, _, _) = turn_of(&open.run(&text("@bob:y", "hi"), 2)).unwrap();
    assert_eq!(speaker, Speaker::Other);
}

#[test]
fn in_a_group_the_twin_answers_only_when_addressed() {
    let world = World::owner_only();
    assert!(world.run(&text("@alice:x", "hi all"), 3).is_empty());
    let mention = Refs {
        mentions: vec!["@alice_ai:x".try_into().unwrap()],
        ..Refs::default()
    };
    let actions = world.run(&text_with("@alice:x", "what now?", mention), 3);
    let (_, reply, _) = turn_of(&actions).unwrap();
    assert_eq!(reply, ReplyTo::Reply(owned_event_id!("$e")));
    // By name in the text.
    assert!(turn_of(&world.run(&text("@alice:x", "Alice's AI: hi"), 3)).is_some());
    // A reply to the twin, and a message in its thread.
    let mut replied = World::owner_only();
    replied.replied_to = true;
    assert!(turn_of(&replied.run(&text("@alice:x", "and?"), 3)).is_some());
    let mut threaded = World::owner_only();
    threaded.in_thread = true;
    let in_thread = Refs {
        thread_root: Some(owned_event_id!("$root")),
        ..Refs::default()
    };
    let actions = threaded.run(&text_with("@alice:x", "more", in_thread), 3);
    assert_eq!(
        turn_of(&actions).unwrap().1,
        ReplyTo::Thread {
            root: owned_event_id!("$root"),
            event: owned_event_id!("$e")
        }
    );
}

#[test]
fn unprompted_rooms_answer_everything_from_allowed_people() {
    let mut world = World::owner_only();
    world.settings.unprompted = true;
    assert!(turn_of(&world.run(&text("@alice:x", "hi all"), 3)).is_some());
    // Bob may not address it: silence, not a notice, when he did not address it.
    assert!(world.run(&text("@bob:x", "hi all"), 3).is_empty());
}

#[test]
fn a_stranger_addressing_the_twin_in_a_group_is_refused_or_answered_per_room_settings() {
    let mut world = World::owner_only();
    let mention = || Refs {
        mentions: vec!["@alice_ai:x".try_into().unwrap()],
        ..Refs::default()
    };
    assert!(matches!(
        world.run(&text_with("@bob:x", "tell me", mention()), 3)[..],
        [Action::Refuse { .. }]
    ));
    world.settings.address = vec!["members".into()];
    let (speaker, _, bot) =
        turn_of(&world.run(&text_with("@bob:x", "tell me", mention()), 3)).unwrap();
    assert_eq!((speaker, bot), (Speaker::Other, false));
    // Another twin addressing it is a bot turn (bounded when run).
    let (_, _, bot) =
        turn_of(&world.run(&text_with("@bob_ai:y", "tell me", mention()), 3)).unwrap();
    assert!(bot);
}

#[test]
fn twins_never_answer_themselves_notices_edits_or_blocked_people() {
    let mut world = World::owner_only();
    world.settings.unprompted = true;
    assert!(world.run(&text("@alice_ai:x", "hi"), 2).is_empty());
    let notice = RoomEvent::Text {
        room_id: owned_room_id!("!r:x"),
        event_id: owned_event_id!("$e"),
        sender: "@alice:x".try_into().unwrap(),
        kind: MessageKind::Notice,
        body: "hi".into(),
        is_edit: false,
        refs: Refs::default(),
        double_puppet: false,
        media: None,
    };
    assert!(world.run(&notice, 2).is_empty());
    let blocked = World::new(AccessFile {
        dm: vec!["*".into()],
        blocked: vec!["@eve:x".into()],
        ..AccessFile::default()
    });
    assert!(blocked.run(&text("@eve:x", "hi"), 2).is_empty());
    // An unknown bot in a DM gets nothing (no notice ping-pong).
    assert!(world.run(&text("@carol_ai:z", "hi"), 2).is_empty());
}

#[test]
fn commands_go_to_the_owners_twin_and_bare_words_only_in_the_owners_dm() {
    let world = World::owner_only();
    assert!(matches!(
        world.run(&text("@alice:x", "status"), 2)[..],
        [Action::Command {
            command: Command::Status,
            ..
        }]
    ));
    assert!(matches!(
        world.run(&text("@alice:x", "!ai status"), 3)[..],
        [Action::Command { .. }]
    ));
    // Bare words in a group are just talk (and the twin was not addressed).
    assert!(world.run(&text("@alice:x", "status"), 3).is_empty());
    // A stranger's command in a group where it was not addressed: nothing.
    assert!(world.run(&text("@bob:x", "!ai status"), 3).is_empty());
}

#[test]
fn membership_of_non_twins_is_ignored() {
    let world = World::owner_only();
    assert!(
        world
            .run(&member("@alice:x", "@bob:x", "invite", false), 2)
            .is_empty()
    );
}

#[test]
fn protocol_events_count_only_when_they_arrived_encrypted() {
    let mut world = World::owner_only();
    let request = RoomEvent::Protocol {
        room_id: owned_room_id!("!r:x"),
        event_id: owned_event_id!("$p"),
        sender: "@bob_ai:y".try_into().unwrap(),
        event_type: "dev.matrixos.a2a.request".into(),
        content: serde_json::json!({"version": "1"}),
    };
    assert_eq!(world.run(&request, 2), vec![]);
    world.encrypted = true;
    assert!(matches!(
        world.run(&request, 2)[..],
        [Action::Protocol { .. }]
    ));
}

/// Alice's twin in a portal, as `side` says.
fn in_portal(event: &RoomEvent, side: PortalSide<'_>) -> Vec<Action> {
    let world = World::owner_only();
    let naming = naming();
    let allowed = |u: &UserId| u.server_name() == "x";
    let views = [TwinView {
        twin: user_id!("@alice_ai:x"),
        owner: user_id!("@alice:x"),
        joined: true,
        access: &world.access,
        settings: &world.settings,
        display_name: Some("alice's AI"),
        replied_to: false,
        in_thread: false,
        portal: Some(side),
    }];
    decide(
        event,
        &Context {
            naming: &naming,
            may_have_twin: &allowed,
            twins: &views,
            member_count: 4,
            arrived_encrypted: false,
            bridges: &crate::bridge::Bridges::default(),
        },
    )
}

#[test]
fn portals_answer_only_what_the_owner_allowed_there() {
    use crate::bridge::PortalMode;
    let ghosts = [ruma::owned_user_id!("@telegram_1001:x")];
    let side = |mode, owner_chat, quiet| PortalSide {
        mode,
        owner_chat,
        owner_ghosts: &ghosts,
        quiet,
    };
    // The owner's note-to-self chat: their ghost is the owner, answered like a DM.
    let actions = in_portal(
        &text("@telegram_1001:x", "remind me"),
        side(PortalMode::Read, true, false),
    );
    match actions.as_slice() {
        [Action::Turn(job)] => {
            assert_eq!(job.speaker, Speaker::Owner);
            assert_eq!(job.sender.as_str(), "@alice:x");
            assert!(!job.group);
            assert_eq!(job.reply, ReplyTo::Plain);
        }
        other => panic!("{other:?}"),
    }
    // A contact in a portal only read: nothing, not even a refusal.
    let contact = text("@telegram_2002:x", "hi");
    assert!(in_portal(&contact, side(PortalMode::Read, false, false)).is_empty());
    assert!(in_portal(&contact, side(PortalMode::Off, false, false)).is_empty());
    // Opted in: a public turn, as a reply (never a thread).
    match in_portal(&contact, side(PortalMode::Answer, false, false)).as_slice() {
        [Action::Turn(job)] => {
            assert_eq!(job.speaker, Speaker::Other);
            assert!(job.group);
            assert!(matches!(job.reply, ReplyTo::Reply(_)));
        }
        other => panic!("{other:?}"),
    }
    // The owner answered lately: quiet.
    assert!(in_portal(&contact, side(PortalMode::Answer, false, true)).is_empty());
    // The owner writing there is the human answering.
    assert!(matches!(
        in_portal(
            &text("@alice:x", "I'm here"),
            side(PortalMode::Answer, false, false)
        )
        .as_slice(),
        [Action::OwnerAnswered { .. }]
    ));
    // Commands of the owner work in any portal; a contact's never.
    assert!(matches!(
        in_portal(
            &text("@alice:x", "!ai bridge answer"),
            side(PortalMode::Read, false, false)
        )
        .as_slice(),
        [Action::Command { .. }]
    ));
    assert!(
        in_portal(
            &text("@telegram_2002:x", "!ai bridge answer"),
            side(PortalMode::Read, false, false)
        )
        .is_empty()
    );
}
