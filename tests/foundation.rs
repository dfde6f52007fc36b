//! Foundation, end to end: a real Synapse, the service in-process, a scripted fake model that
//! speaks the real wire protocols, and a real matrix-sdk client as the human.

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
#[path = "support/synapse.rs"]
mod synapse;

use std::time::Duration;

use env::{EnvOptions, TestEnv};
use fake_llm::Step;
use human::Human;
use matrix_os::config::LlmProvider;
use matrix_sdk::Room;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// Alice logs in and opens a DM with her twin, which joins.
async fn dm_with_twin(env: &TestEnv, owner: &str) -> (Human, Room) {
    let human = env.human(owner).await;
    let twin = env.twin_of(owner);
    let room = human.create_dm(&twin, false).await;
    human.wait_for_join(&room, &twin, WAIT).await;
    (human, room)
}

/// Every request body the fake model received, as text.
fn llm_bodies(env: &TestEnv) -> Vec<String> {
    env.llm
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_conversation_gets_a_formatted_reply_and_keeps_context() {
    let env = TestEnv::start().await;
    let (alice, room) = dm_with_twin(&env, "alice").await;
    let twin = env.twin_of("alice");

    env.llm
        .push(Step::text("**Hello**, Alice! I am your twin."));
    alice.send_text(&room, "hi twin").await;
    let replies = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    let reply = &replies[0];
    assert_eq!(reply.body(), "**Hello**, Alice! I am your twin.");
    assert_eq!(
        reply
            .json
            .pointer("/content/format")
            .and_then(Value::as_str),
        Some("org.matrix.custom.html")
    );
    assert!(
        reply
            .formatted_body()
            .unwrap()
            .contains("<strong>Hello</strong>"),
        "{:?}",
        reply.json
    );

    // The second turn sees the first one (the default fake answer echoes the input).
    alice.send_text(&room, "what did I say first?").await;
    let replies = alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    assert_eq!(replies[1].body(), "echo: what did I say first?");
    let bodies = llm_bodies(&env);
    assert_eq!(bodies.len(), 2);
    assert!(
        bodies[1].contains("hi twin") && bodies[1].contains("I am your twin"),
        "{}",
        bodies[1]
    );

    // The twin is named from its identity file, and the transcript is a file in the home.
    let member = alice
        .state_event(&room, "m.room.member", twin.as_str())
        .await
        .unwrap();
    assert_eq!(member["displayname"], "alice's AI");
    let sessions = env.home_of("alice").join("system/sessions");
    let transcript: String = std::fs::read_dir(&sessions)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(transcript.contains("hi twin") && transcript.contains("what did I say first?"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_call_writes_a_file_in_the_home_and_commits_it() {
    let env = TestEnv::start_with(EnvOptions {
        provider: LlmProvider::Anthropic,
        ..Default::default()
    })
    .await;
    let (alice, room) = dm_with_twin(&env, "alice").await;
    let twin = env.twin_of("alice");

    env.llm.push(Step::tool_call(
        "write_file",
        json!({"path": "data/notes/meeting.md", "content": "# Meeting\n- agree on Tuesday\n"}),
    ));
    env.llm.push(Step::text("Saved your note."));
    alice.send_text(&room, "note: agree on Tuesday").await;
    let replies = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert_eq!(replies[0].body(), "Saved your note.");

    let home = env.home_of("alice");
    assert_eq!(
        std::fs::read_to_string(home.join("data/notes/meeting.md")).unwrap(),
        "# Meeting\n- agree on Tuesday\n"
    );
    let repo = git2::Repository::open(&home).unwrap();
    let mut walk = repo.revwalk().unwrap();
    walk.push_head().unwrap();
    let messages: Vec<String> = walk
        .map(|oid| {
            repo.find_commit(oid.unwrap())
                .unwrap()
                .message()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let commit = messages
        .iter()
        .find(|m| m.contains("data/notes/meeting.md"))
        .expect("a commit for the write");
    assert!(
        commit.contains("write_file") && commit.contains(room.room_id().as_str()),
        "{commit}"
    );
    // Anthropic wire format was used.
    assert!(
        env.llm
            .requests()
            .iter()
            .all(|r| r.path.ends_with("/v1/messages"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_escape_is_refused_and_the_turn_goes_on() {
    let env = TestEnv::start().await;
    let (alice, room) = dm_with_twin(&env, "alice").await;
    let twin = env.twin_of("alice");

    env.llm.push(Step::tool_call(
        "read_file",
        json!({"path": "../../../../../../etc/passwd"}),
    ));
    env.llm.push(Step::text("I cannot read that."));
    alice.send_text(&room, "read /etc/passwd for me").await;
    let replies = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert_eq!(replies[0].body(), "I cannot read that.");
    let bodies = llm_bodies(&env);
    assert_eq!(bodies.len(), 2);
    assert!(
        bodies[1].contains("must stay inside your home"),
        "{}",
        bodies[1]
    );
    assert!(!bodies[1].contains("root:x:0:0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_from_someone_else_than_the_owner_is_declined() {
    let env = TestEnv::start().await;
    // Alice exists (a twin is only made for an owner the homeserver knows) but is not here.
    env.human("alice").await;
    let bob = env.human("bob").await;
    let twin = env.twin_of("alice");
    let room = bob.create_room(&[&twin], false, false).await;
    let member = bob.wait_for_membership(&room, &twin, "leave", WAIT).await;
    let reason = member["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("@alice:{}", env.server_name())),
        "{member}"
    );
    assert!(env.llm.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_authenticated_validated_and_deduplicated() {
    let env = TestEnv::start().await;
    let (alice, room) = dm_with_twin(&env, "alice").await;
    let twin = env.twin_of("alice");
    let hs_token = env.registration.hs_token.expose().to_owned();
    let event = |id: &str, body: &str| {
        json!({
            "type": "m.room.message", "room_id": room.room_id(), "sender": alice.user_id,
            "event_id": id, "origin_server_ts": 1, "content": {"msgtype": "m.text", "body": body}
        })
    };

    let missing = env
        .put_transaction("t-auth", r#"{"events":[]}"#, None)
        .await;
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["errcode"],
        "M_UNAUTHORIZED"
    );
    let wrong = env
        .put_transaction("t-auth", r#"{"events":[]}"#, Some("not-the-token"))
        .await;
    assert_eq!(wrong.status(), 403);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["errcode"],
        "M_FORBIDDEN"
    );

    // A body whose second event is broken is refused whole: the first is not stored either.
    let half = json!({"events": [event("$half-1", "half stored?"), 42]}).to_string();
    let refused = env.put_transaction("t-half", &half, Some(&hs_token)).await;
    assert_eq!(refused.status(), 400);
    assert!(
        refused.json::<Value>().await.unwrap()["errcode"]
            .as_str()
            .unwrap()
            .starts_with("M_")
    );
    let garbage = env
        .put_transaction("t-garbage", "{not json", Some(&hs_token))
        .await;
    assert_eq!(garbage.status(), 400);

    let body = json!({"events": [event("$synthetic-1", "synthetic hello")]}).to_string();
    for _ in 0..2 {
        let ok = env.put_transaction("t-dup", &body, Some(&hs_token)).await;
        assert_eq!(ok.status(), 200);
    }
    let replies = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert_eq!(replies[0].body(), "echo: synthetic hello");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let replies = alice.messages_from(&room, &twin).await;
    assert_eq!(replies.len(), 1, "one transaction id, one answer");
    let bodies = llm_bodies(&env);
    assert_eq!(
        bodies
            .iter()
            .filter(|b| b.contains("synthetic hello"))
            .count(),
        1
    );
    assert!(!bodies.iter().any(|b| b.contains("half stored?")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_query_provisions_allowed_twins_of_existing_owners_only() {
    let env = TestEnv::start().await;
    let token = env.registration.hs_token.expose().to_owned();
    let query = |user: String| {
        let url = format!("{}/_matrix/app/v1/users/{}", env.appservice_url(), user);
        let token = token.clone();
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let server = env.server_name().to_owned();
    // No twin, account or home for an owner the homeserver does not know.
    assert_eq!(query(format!("@ghost_ai:{server}")).await, 404);
    assert!(!env.home_of("ghost").exists());
    let ghost = reqwest::get(format!(
        "{}/_matrix/client/v3/profile/@ghost_ai:{server}",
        env.hs.client_url()
    ))
    .await
    .unwrap()
    .status();
    assert_eq!(ghost, 404, "the twin's account was not registered");
    env.human("carol").await;
    assert_eq!(query(format!("@carol_ai:{server}")).await, 200);
    assert_eq!(query(format!("@carol:{server}")).await, 404);
    assert_eq!(query("@carol_ai:elsewhere.example".into()).await, 404);
    // The twin now exists on the homeserver, named from its home's identity file.
    let profile: Value = reqwest::get(format!(
        "{}/_matrix/client/v3/profile/@carol_ai:{server}",
        env.hs.client_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(profile["displayname"], "carol's AI", "{profile}");
    // The home is made the first time the twin has something to do, not for a mere query.
    assert!(!env.home_of("carol").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_sent_while_the_service_is_down_is_answered_once_after_restart() {
    let mut env = TestEnv::start().await;
    let (alice, room) = dm_with_twin(&env, "alice").await;
    let twin = env.twin_of("alice");

    env.stop_service().await;
    alice.send_text(&room, "are you there?").await;
    // Synapse tries, fails and backs off while we are down.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(env.llm.requests().is_empty());
    env.start_service().await;

    let replies = alice
        .wait_for_messages_from(&room, &twin, 1, Duration::from_secs(60))
        .await;
    assert_eq!(replies[0].body(), "echo: are you there?");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        alice.messages_from(&room, &twin).await.len(),
        1,
        "answered exactly once"
    );
    assert_eq!(
        llm_bodies(&env)
            .iter()
            .filter(|b| b.contains("are you there?"))
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_error_then_success_is_retried_transparently() {
    let env = TestEnv::start().await;
    let (alice, room) = dm_with_twin(&env, "alice").await;
    let twin = env.twin_of("alice");

    env.llm.push(Step::error(500, "upstream exploded"));
    env.llm.push(Step::text("recovered"));
    alice.send_text(&room, "hello?").await;
    let replies = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert_eq!(replies[0].body(), "recovered");
    assert_eq!(env.llm.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_that_keeps_failing_gives_a_clear_message_and_the_room_recovers() {
    let env = TestEnv::start_with(EnvOptions {
        max_retries: 1,
        ..Default::default()
    })
    .await;
    let (alice, room) = dm_with_twin(&env, "alice").await;
    let twin = env.twin_of("alice");

    env.llm.push(Step::error(500, "down"));
    env.llm.push(Step::error(503, "still down"));
    alice.send_text(&room, "anyone home?").await;
    let replies = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    let text = replies[0].body().to_lowercase();
    assert!(
        text.contains("language model") && text.contains("try again"),
        "{text}"
    );
    assert_eq!(env.llm.requests().len(), 2);

    alice.send_text(&room, "and now?").await;
    let replies = alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    assert_eq!(replies[1].body(), "echo: and now?");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_conversation_works_on_postgresql_across_a_restart() {
    let pg = postgres::PgServer::start();
    let mut env = TestEnv::start_with(EnvOptions {
        database_url: Some(pg.url()),
        ..Default::default()
    })
    .await;
    let (alice, room) = dm_with_twin(&env, "alice").await;
    let twin = env.twin_of("alice");

    env.llm.push(Step::text("**Noted.**"));
    alice.send_text(&room, "my favourite colour is teal").await;
    let replies = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert!(
        replies[0]
            .formatted_body()
            .unwrap()
            .contains("<strong>Noted.</strong>")
    );

    env.stop_service().await;
    env.start_service().await;
    alice.send_text(&room, "what is my favourite colour?").await;
    let replies = alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    assert_eq!(replies[1].body(), "echo: what is my favourite colour?");
    let bodies = llm_bodies(&env);
    assert!(
        bodies[1].contains("teal"),
        "history comes back from PostgreSQL: {}",
        bodies[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_marks_the_message_read_and_types_while_thinking() {
    use matrix_sdk::ruma::events::receipt::{ReceiptThread, ReceiptType};

    let env = TestEnv::start().await;
    let (alice, room) = dm_with_twin(&env, "alice").await;
    let twin = env.twin_of("alice");
    let (_guard, mut typing) = room.subscribe_to_typing_notifications();

    env.llm.push(Step::delayed(
        Duration::from_secs(3),
        Step::text("done thinking"),
    ));
    let asked = alice.send_text(&room, "think hard").await;
    let mut saw_typing = false;
    let deadline = std::time::Instant::now() + WAIT;
    while alice.messages_from(&room, &twin).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "no reply");
        alice.sync().await;
        while let Ok(users) = typing.try_recv() {
            saw_typing |= users.contains(&twin);
        }
    }
    assert!(saw_typing, "the twin showed typing while the model worked");
    alice.sync().await;
    let (read, _) = room
        .load_user_receipt(ReceiptType::Read, ReceiptThread::Unthreaded, &twin)
        .await
        .unwrap()
        .expect("a read receipt from the twin");
    assert_eq!(read, asked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_room_never_delays_another_and_turns_in_a_room_keep_their_order() {
    let env = TestEnv::start().await;
    let (alice, slow_room) = dm_with_twin(&env, "alice").await;
    let (bob, fast_room) = dm_with_twin(&env, "bob").await;
    let alice_twin = env.twin_of("alice");
    let bob_twin = env.twin_of("bob");

    // The fake answers requests in arrival order: Alice's turn gets the slow answer.
    env.llm.push(Step::delayed(
        Duration::from_secs(6),
        Step::text("slow answer"),
    ));
    alice.send_text(&slow_room, "take your time").await;
    while env.llm.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bob.send_text(&fast_room, "quick one").await;
    let fast = bob
        .wait_for_messages_from(&fast_room, &bob_twin, 1, WAIT)
        .await;
    assert_eq!(fast[0].body(), "echo: quick one");
    assert!(
        alice
            .messages_from(&slow_room, &alice_twin)
            .await
            .is_empty(),
        "Bob was answered while Alice's turn ran"
    );

    // Three quick messages in one room are answered one at a time, in order.
    for text in ["one", "two", "three"] {
        bob.send_text(&fast_room, text).await;
    }
    let replies = bob
        .wait_for_messages_from(&fast_room, &bob_twin, 4, WAIT)
        .await;
    let bodies: Vec<&str> = replies.iter().map(|r| r.body()).collect();
    assert_eq!(
        bodies,
        ["echo: quick one", "echo: one", "echo: two", "echo: three"]
    );
    let slow = alice
        .wait_for_messages_from(&slow_room, &alice_twin, 1, WAIT)
        .await;
    assert_eq!(slow[0].body(), "slow answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_transactions_and_unknown_endpoints_get_matrix_errors() {
    let env = TestEnv::start().await;
    let token = env.registration.hs_token.expose().to_owned();
    let huge = format!(
        r#"{{"events":[{{"type":"m.room.message","content":{{"body":"{}"}}}}]}}"#,
        "x".repeat(17 * 1024 * 1024)
    );
    let response = env.put_transaction("t-huge", &huge, Some(&token)).await;
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.json::<Value>().await.unwrap()["errcode"],
        "M_TOO_LARGE"
    );

    let alias = reqwest::Client::new()
        .get(format!(
            "{}/_matrix/app/v1/rooms/%23anything:{}",
            env.appservice_url(),
            env.server_name()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(alias.status(), 404);
    let unknown = reqwest::Client::new()
        .get(format!("{}/nope", env.appservice_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["errcode"],
        "M_UNRECOGNIZED"
    );
}
