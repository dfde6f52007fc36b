//! Group rooms, access policy, pairing, rate limits and bot loops, with real Synapse and real
//! matrix-sdk clients.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

#[path = "support/env.rs"]
mod env;
#[path = "support/fake_llm.rs"]
mod fake_llm;
#[path = "support/fault_proxy.rs"]
mod fault_proxy;
#[path = "support/human.rs"]
mod human;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/rooms.rs"]
mod rooms;
#[path = "support/synapse.rs"]
mod synapse;

use std::time::Duration;

use env::{EnvOptions, TestEnv};
use fake_llm::Step;
use human::Seen;
use matrix_sdk::ruma::{
    OwnedEventId,
    events::{
        relation::Thread,
        room::message::{Relation, RoomMessageEventContent},
    },
};
use rooms::{group_room, mention, model_calls};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(40);

fn in_thread(mut content: RoomMessageEventContent, root: &OwnedEventId) -> RoomMessageEventContent {
    content.relates_to = Some(Relation::Thread(Thread::plain(root.clone(), root.clone())));
    content
}

fn relation(seen: &Seen) -> Value {
    seen.json
        .pointer("/content/m.relates_to")
        .cloned()
        .unwrap_or(Value::Null)
}

/// All request bodies the fake model received, as one string.
fn all_requests(env: &TestEnv) -> String {
    env.llm
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_twin_stays_silent_until_addressed_answers_in_threads_and_knows_who_said_what() {
    let env = TestEnv::start().await;
    let alice = env.human("alice").await;
    let bob = env.human("bob").await;
    let carol = env.human("carol").await;
    let twin = env.twin_of("alice");
    let room = group_room(&env, &alice, &[&bob, &carol], true).await;
    let bob_room = bob.room(&room.room_id().to_owned());
    let carol_room = carol.room(&room.room_id().to_owned());
    bob.sync().await;
    carol.sync().await;

    bob.send_text(&bob_room, "Lunch at noon tomorrow?").await;
    carol
        .send_text(&carol_room, "Fine by me, but not the pizza place")
        .await;
    alice.send_text(&room, "Let me think about it").await;
    // Bob addresses the twin: by default only Alice may, so he is told once, and the model
    // is not called.
    bob.send_content(&bob_room, mention("what does Alice think?", &twin))
        .await;
    env.llm.push(Step::text(
        "Noon works; Carol prefers somewhere other than pizza.",
    ));
    let asked = alice
        .send_content(&room, mention("what do you suggest?", &twin))
        .await;

    let seen = alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    assert_eq!(seen[0].kind(), "m.room.message");
    assert_eq!(
        seen[0].json["content"]["msgtype"], "m.notice",
        "{:?}",
        seen[0].json
    );
    assert!(seen[0].body().contains("only answer"), "{}", seen[0].body());
    assert_eq!(
        seen[1].body(),
        "Noon works; Carol prefers somewhere other than pizza."
    );
    assert_eq!(
        relation(&seen[1])["m.in_reply_to"]["event_id"],
        asked.as_str(),
        "the answer is a reply to the question"
    );
    assert_eq!(
        model_calls(&env),
        1,
        "unaddressed messages never reach the model"
    );
    // The model saw who said what, with names and MXIDs.
    let request = all_requests(&env);
    for expected in [
        "bob (@bob:",
        "Lunch at noon tomorrow?",
        "carol (@carol:",
        "not the pizza place",
        "Message to you from your owner, alice (@alice:",
    ] {
        assert!(
            request.contains(expected),
            "{expected:?} missing from {request}"
        );
    }

    // A thread: addressed once, the twin answers in it, and then follows it unaddressed.
    let root = alice.send_text(&room, "Planning the offsite").await;
    env.llm.push(Step::text("Thursday looks free."));
    alice
        .send_content(&room, in_thread(mention("which day?", &twin), &root))
        .await;
    let seen = alice.wait_for_messages_from(&room, &twin, 3, WAIT).await;
    assert_eq!(relation(&seen[2])["rel_type"], "m.thread");
    assert_eq!(relation(&seen[2])["event_id"], root.as_str());
    env.llm.push(Step::text("Then Thursday it is."));
    bob.sync().await;
    alice
        .send_content(
            &room,
            in_thread(
                RoomMessageEventContent::text_plain("ok, and the time?"),
                &root,
            ),
        )
        .await;
    let seen = alice.wait_for_messages_from(&room, &twin, 4, WAIT).await;
    assert_eq!(seen[3].body(), "Then Thursday it is.");
    assert_eq!(relation(&seen[3])["event_id"], root.as_str());
    assert_eq!(model_calls(&env), 3);

    // Room settings by command: speak unprompted, with only one tool.
    alice
        .send_text(&room, "!ai policy room unprompted on")
        .await;
    alice.wait_for_messages_from(&room, &twin, 5, WAIT).await;
    alice
        .send_text(&room, "!ai policy room tools read_file")
        .await;
    alice.wait_for_messages_from(&room, &twin, 6, WAIT).await;
    env.llm.push(Step::text("Unprompted, with one tool."));
    alice.send_text(&room, "anyone free on Friday?").await;
    let seen = alice.wait_for_messages_from(&room, &twin, 7, WAIT).await;
    assert_eq!(seen[6].body(), "Unprompted, with one tool.");
    let request = env.llm.requests().last().unwrap().body.clone();
    let tools: Vec<String> = request["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t.pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(tools, ["read_file"], "{request}");
    let settings = std::fs::read_dir(env.home_of("alice").join("system/rooms"))
        .unwrap()
        .count();
    assert_eq!(settings, 1, "one settings file for the room");
}

fn bot_limits(config: &mut matrix_os::config::Config) {
    config.limits.bot_turns = 3;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_twins_answer_their_owners_and_a_bot_ping_pong_stops_at_the_bound() {
    let env = TestEnv::start_with(EnvOptions {
        configure: Some(bot_limits),
        ..EnvOptions::default()
    })
    .await;
    let alice = env.human("alice").await;
    let bob = env.human("bob").await;
    let alice_ai = env.twin_of("alice");
    let bob_ai = env.twin_of("bob");
    let room = group_room(&env, &alice, &[&bob], false).await;
    let bob_room = bob.room(&room.room_id().to_owned());
    bob_room.invite_user_by_id(&bob_ai).await.unwrap();
    alice.wait_for_join(&room, &bob_ai, WAIT).await;

    // Each owner addresses their own twin; only that twin answers.
    env.llm.push(Step::text("Hi Alice."));
    alice.send_content(&room, mention("hello", &alice_ai)).await;
    alice
        .wait_for_messages_from(&room, &alice_ai, 1, WAIT)
        .await;
    env.llm.push(Step::text("Hi Bob."));
    bob.send_content(&bob_room, mention("hello", &bob_ai)).await;
    alice.wait_for_messages_from(&room, &bob_ai, 1, WAIT).await;
    assert_eq!(model_calls(&env), 2);

    // Both owners let everyone in the room address their twins; commands answer as notices.
    alice
        .send_text(&room, "!ai policy room address members")
        .await;
    bob.send_text(&bob_room, "!ai policy room address members")
        .await;
    alice
        .wait_for_messages_from(&room, &alice_ai, 2, WAIT)
        .await;
    alice.wait_for_messages_from(&room, &bob_ai, 2, WAIT).await;

    // A model that always pokes the other twin: a ping-pong only the bound stops.
    for _ in 0..12 {
        env.llm
            .push(Step::text(format!("ping {alice_ai} {bob_ai}")));
    }
    alice.send_content(&room, mention("start", &alice_ai)).await;
    // Alice's turn, then exactly 3 bot-to-bot turns.
    let deadline = std::time::Instant::now() + WAIT;
    while model_calls(&env) < 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "ping-pong did not run"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Give a runaway loop time to show itself.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        model_calls(&env),
        6,
        "2 greetings + 1 owner turn + 3 bot turns"
    );
    alice.sync().await;
    let pings = alice
        .messages(&room)
        .await
        .into_iter()
        .filter(|m| m.body().starts_with("ping"))
        .count();
    assert_eq!(pings, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_dm_asks_the_owner_and_is_answered_after_approval() {
    let env = TestEnv::start().await;
    let alice = env.human("alice").await;
    let bob = env.human("bob").await;
    let twin = env.twin_of("alice");
    let alice_dm = alice.create_dm(&twin, true).await;
    alice.wait_for_join(&alice_dm, &twin, WAIT).await;

    let user_md = env.home_of("alice").join("system/user.md");
    let mut private = std::fs::read_to_string(&user_md).unwrap();
    private.push_str("\n- Secret: CANARY-PAIRING-1187\n");
    std::fs::write(&user_md, private).unwrap();

    let bob_dm = bob.create_dm(&twin, true).await;
    bob.wait_for_join(&bob_dm, &twin, WAIT).await;
    bob.sync().await;
    bob.send_text(&bob_dm, "Hi, can we talk about the offsite?")
        .await;

    let to_alice = alice
        .wait_for_messages_from(&alice_dm, &twin, 1, WAIT)
        .await;
    let ask = to_alice[0].body();
    assert!(ask.contains(bob.user_id.as_str()), "{ask}");
    assert!(ask.contains("can we talk about the offsite?"), "{ask}");
    assert!(ask.contains("approve"), "{ask}");
    let to_bob = bob.wait_for_messages_from(&bob_dm, &twin, 1, WAIT).await;
    assert!(to_bob[0].body().contains("asked"), "{}", to_bob[0].body());
    assert_eq!(
        model_calls(&env),
        0,
        "nothing reaches the model before approval"
    );

    env.llm
        .push(Step::text("Sure, happy to help with the offsite."));
    alice
        .send_text(&alice_dm, &format!("approve {}", bob.user_id))
        .await;
    let to_bob = bob.wait_for_messages_from(&bob_dm, &twin, 3, WAIT).await;
    assert!(to_bob[1].body().contains("agreed"), "{}", to_bob[1].body());
    assert_eq!(to_bob[2].body(), "Sure, happy to help with the offsite.");
    let to_alice = alice
        .wait_for_messages_from(&alice_dm, &twin, 2, WAIT)
        .await;
    assert!(to_alice[1].body().contains("✅"), "{}", to_alice[1].body());
    let access = std::fs::read_to_string(env.home_of("alice").join("system/access.toml")).unwrap();
    assert!(access.contains(bob.user_id.as_str()), "{access}");

    // Bob is a stranger to the kernel: it worked from the public context.
    let request = env.llm.requests().last().unwrap().body.to_string();
    assert!(request.contains("can we talk about the offsite?"));
    assert!(
        !request.contains("CANARY-PAIRING-1187"),
        "private file in a public prompt"
    );

    env.llm.push(Step::text("Thursday works."));
    bob.send_text(&bob_dm, "When is it?").await;
    let to_bob = bob.wait_for_messages_from(&bob_dm, &twin, 4, WAIT).await;
    assert_eq!(to_bob[3].body(), "Thursday works.");

    // The owner can read what her twin told Bob: the room's transcript is a file in her home.
    let transcript = format!(
        "system/sessions/{}",
        matrix_os::home::transcript_file_name(bob_dm.room_id().as_str())
    );
    env.llm.push(Step::tool_call(
        "read_file",
        serde_json::json!({"path": transcript}),
    ));
    env.llm.push(Step::EchoToolResults);
    alice.send_text(&alice_dm, "What did you tell Bob?").await;
    let to_alice = alice
        .wait_for_messages_from(&alice_dm, &twin, 3, WAIT)
        .await;
    assert!(
        to_alice[2].body().contains("Thursday works."),
        "{}",
        to_alice[2].body()
    );
    assert!(
        to_alice[2].body().contains("When is it?"),
        "{}",
        to_alice[2].body()
    );
}

fn quick_limits(config: &mut matrix_os::config::Config) {
    config.limits.sender_messages = 3;
    config.limits.sender_window_secs = 10;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_tells_the_sender_once_and_recovers() {
    let env = TestEnv::start_with(EnvOptions {
        configure: Some(quick_limits),
        ..EnvOptions::default()
    })
    .await;
    let alice = env.human("alice").await;
    let bob = env.human("bob").await;
    let twin = env.twin_of("alice");
    // Alice's twin exists (her DM) and Bob may talk with it.
    let alice_dm = alice.create_dm(&twin, false).await;
    alice.wait_for_join(&alice_dm, &twin, WAIT).await;
    env.write_home_file(
        "alice",
        "system/access.toml",
        &format!("dm = [\"{}\"]\n", bob.user_id),
    );
    let bob_dm = bob.create_dm(&twin, false).await;
    bob.wait_for_join(&bob_dm, &twin, WAIT).await;
    bob.sync().await;

    for i in 0..6 {
        bob.send_text(&bob_dm, &format!("message {i}")).await;
    }
    // 3 answers and one notice; the rest are not answered.
    let seen = bob.wait_for_messages_from(&bob_dm, &twin, 4, WAIT).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    bob.sync().await;
    let seen_later = bob.messages_from(&bob_dm, &twin).await;
    assert_eq!(
        seen_later.len(),
        4,
        "{:?}",
        seen_later.iter().map(Seen::body).collect::<Vec<_>>()
    );
    let notices: Vec<&Seen> = seen
        .iter()
        .filter(|m| m.json["content"]["msgtype"] == "m.notice")
        .collect();
    assert_eq!(notices.len(), 1);
    assert!(
        notices[0].body().contains("faster"),
        "{}",
        notices[0].body()
    );
    assert_eq!(model_calls(&env), 3);

    // After the window, Bob is answered again.
    tokio::time::sleep(Duration::from_secs(8)).await;
    bob.send_text(&bob_dm, "still there?").await;
    let seen = bob.wait_for_messages_from(&bob_dm, &twin, 5, WAIT).await;
    assert!(
        seen[4].body().contains("still there?"),
        "{}",
        seen[4].body()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_answer_in_the_room_and_change_the_twins_behaviour() {
    let env = TestEnv::start().await;
    let alice = env.human("alice").await;
    let twin = env.twin_of("alice");
    let dm = alice.create_dm(&twin, true).await;
    alice.wait_for_join(&dm, &twin, WAIT).await;
    alice.sync().await;
    let mut expected = 0;
    let mut command = async |text: &str| -> String {
        alice.send_text(&dm, text).await;
        expected += 1;
        let seen = alice
            .wait_for_messages_from(&dm, &twin, expected, WAIT)
            .await;
        let last = seen.last().unwrap();
        assert_eq!(
            last.json["content"]["msgtype"], "m.notice",
            "{text}: {:?}",
            last.json
        );
        last.body().to_owned()
    };
    assert!(command("!ai help").await.contains("!ai status"));
    let status = command("status").await;
    assert!(
        status.contains("Model:") && status.contains("encrypted"),
        "{status}"
    );
    let unknown = command("!ai frobnicate").await;
    assert!(
        unknown.contains("frobnicate") && unknown.contains("!ai help"),
        "{unknown}"
    );
    assert_eq!(model_calls(&env), 0, "commands never reach the model");

    env.llm.push(Step::text("Noted: kiwi."));
    alice.send_text(&dm, "remember the word kiwi").await;
    alice.wait_for_messages_from(&dm, &twin, 4, WAIT).await;
    let command = async |text: &str, count: usize| -> String {
        alice.send_text(&dm, text).await;
        let seen = alice.wait_for_messages_from(&dm, &twin, count, WAIT).await;
        seen.last().unwrap().body().to_owned()
    };
    assert!(
        command("!ai model big-model", 5)
            .await
            .contains("big-model")
    );
    env.llm.push(Step::text("It was kiwi."));
    command("what was the word?", 6).await;
    let request = env.llm.requests().last().unwrap().body.clone();
    assert_eq!(request["model"], "big-model");
    assert!(request.to_string().contains("remember the word kiwi"));
    assert!(command("!ai reset", 7).await.contains("New conversation"));
    env.llm.push(Step::text("Which word?"));
    command("and now?", 8).await;
    let request = env.llm.requests().last().unwrap().body.to_string();
    assert!(
        !request.contains("kiwi"),
        "the reset session still has history"
    );
    let settings =
        std::fs::read_to_string(env.home_of("alice").join("system/settings.toml")).unwrap();
    assert!(settings.contains("big-model"), "{settings}");

    alice.send_text(&dm, "!ai leave").await;
    alice.wait_for_membership(&dm, &twin, "leave", WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_stranger_is_told_blocked_and_not_joined_again() {
    let env = TestEnv::start().await;
    let alice = env.human("alice").await;
    let bob = env.human("bob").await;
    let twin = env.twin_of("alice");
    let alice_dm = alice.create_dm(&twin, false).await;
    alice.wait_for_join(&alice_dm, &twin, WAIT).await;
    let bob_dm = bob.create_dm(&twin, false).await;
    bob.wait_for_join(&bob_dm, &twin, WAIT).await;
    bob.sync().await;
    bob.send_text(&bob_dm, "let me in").await;
    alice
        .wait_for_messages_from(&alice_dm, &twin, 1, WAIT)
        .await;
    // Bob insists: told once more that the owner was asked, then silence.
    bob.send_text(&bob_dm, "hello??").await;
    bob.send_text(&bob_dm, "hello???").await;
    alice
        .send_text(&alice_dm, &format!("!ai deny {}", bob.user_id))
        .await;
    let to_alice = alice
        .wait_for_messages_from(&alice_dm, &twin, 2, WAIT)
        .await;
    assert!(
        to_alice[1].body().contains("blocked"),
        "{}",
        to_alice[1].body()
    );
    bob.wait_for_membership(&bob_dm, &twin, "leave", WAIT).await;
    let to_bob = bob.messages_from(&bob_dm, &twin).await;
    let bodies: Vec<&str> = to_bob.iter().map(Seen::body).collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert!(bodies[1].contains("still waiting"), "{bodies:?}");
    assert!(bodies[2].contains("Goodbye"), "{bodies:?}");
    let access = std::fs::read_to_string(env.home_of("alice").join("system/access.toml")).unwrap();
    assert!(
        access.contains(&format!("blocked = [\"{}\"]", bob.user_id)),
        "{access}"
    );
    assert_eq!(model_calls(&env), 0);

    // A new DM invite from Bob is declined with a reason.
    let again = bob.create_dm(&twin, false).await;
    let member = bob.wait_for_membership(&again, &twin, "leave", WAIT).await;
    assert!(
        member["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("@alice:"),
        "{member}"
    );
}

fn per_server_limit(config: &mut matrix_os::config::Config) {
    config.limits.server_messages = 2;
    config.limits.server_window_secs = 12;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_rooms_and_the_per_server_rate_limit() {
    let env = TestEnv::start_with(EnvOptions {
        configure: Some(per_server_limit),
        federated: true,
        ..EnvOptions::default()
    })
    .await;
    let alice = env.human("alice").await;
    let bob = env.remote_human("bob").await;
    let carol = env.remote_human("carol").await;
    let twin = env.twin_of("alice");
    let remote = env.peer.as_ref().unwrap().server_name().to_owned();

    // A room on the other server: Alice joins and invites her twin, which joins over
    // federation and answers her there.
    let room = bob.create_room(&[&alice.user_id], false, true).await;
    let alice_room = alice.join(room.room_id()).await;
    alice_room.invite_user_by_id(&twin).await.unwrap();
    bob.wait_for_join(&room, &twin, WAIT).await;
    alice.sync().await;
    env.llm
        .push(Step::text("Hello from across the federation."));
    alice
        .send_content(&alice_room, mention("are you there?", &twin))
        .await;
    let seen = bob.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert_eq!(seen[0].body(), "Hello from across the federation.");

    // Everyone on the other server may DM the twin; together they get 2 answers per window.
    let alice_dm = alice.create_dm(&twin, false).await;
    alice.wait_for_join(&alice_dm, &twin, WAIT).await;
    env.write_home_file(
        "alice",
        "system/access.toml",
        &format!("dm = [\"@*:{remote}\"]\n"),
    );
    let bob_dm = bob.create_dm(&twin, true).await;
    bob.wait_for_join(&bob_dm, &twin, WAIT).await;
    let carol_dm = carol.create_dm(&twin, true).await;
    carol.wait_for_join(&carol_dm, &twin, WAIT).await;
    bob.sync().await;
    carol.sync().await;
    bob.send_text(&bob_dm, "one").await;
    bob.wait_for_messages_from(&bob_dm, &twin, 1, WAIT).await;
    bob.send_text(&bob_dm, "two").await;
    bob.wait_for_messages_from(&bob_dm, &twin, 2, WAIT).await;
    carol.send_text(&carol_dm, "three").await;
    let seen = carol
        .wait_for_messages_from(&carol_dm, &twin, 1, WAIT)
        .await;
    assert_eq!(seen[0].json["content"]["msgtype"], "m.notice");
    assert!(seen[0].body().contains(&remote), "{}", seen[0].body());
    carol.send_text(&carol_dm, "four").await;
    bob.send_text(&bob_dm, "five").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    carol.sync().await;
    bob.sync().await;
    assert_eq!(
        carol.messages_from(&carol_dm, &twin).await.len(),
        1,
        "told once"
    );
    assert_eq!(
        bob.messages_from(&bob_dm, &twin).await.len(),
        2,
        "bob silent too"
    );
    // The window frees: answered again.
    tokio::time::sleep(Duration::from_secs(10)).await;
    carol.send_text(&carol_dm, "six").await;
    let seen = carol
        .wait_for_messages_from(&carol_dm, &twin, 2, WAIT)
        .await;
    assert!(seen[1].body().contains("six"), "{}", seen[1].body());
}
