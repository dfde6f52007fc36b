//! End-to-end encryption with real Synapse and a real matrix-sdk client (the crypto Element
//! uses): twins read and write encrypted rooms, fed only by appservice transactions.

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

use env::TestEnv;
use human::Human;
use matrix_sdk::Room;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(40);

async fn encrypted_dm(env: &TestEnv, owner: &str) -> (Human, Room) {
    let human = env.human(owner).await;
    let twin = env.twin_of(owner);
    let room = human.create_dm(&twin, true).await;
    human.wait_for_join(&room, &twin, WAIT).await;
    human.sync().await;
    (human, room)
}

/// No event of a twin in `room` is plaintext on the wire.
async fn assert_twin_never_sent_plaintext(env: &TestEnv, human: &Human, room: &Room, twin: &str) {
    for event in env.raw_events(human, room).await {
        if event["sender"] == twin && event.get("state_key").is_none() {
            assert_eq!(
                event["type"], "m.room.encrypted",
                "plaintext from the twin: {event}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_dm_works_both_ways() {
    let env = TestEnv::start().await;
    let (alice, room) = encrypted_dm(&env, "alice").await;
    let twin = env.twin_of("alice");

    alice.send_text(&room, "a secret hello").await;
    let replies = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert_eq!(replies[0].kind(), "m.room.message");
    assert_eq!(replies[0].body(), "echo: a secret hello");
    // The model saw the decrypted text.
    assert!(
        env.llm.requests()[0]
            .body
            .to_string()
            .contains("a secret hello")
    );
    assert_twin_never_sent_plaintext(&env, &alice, &room, twin.as_str()).await;
    let health: Value = reqwest::get(format!("{}/health", env.appservice_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["undecrypted_events"], 0, "{health}");
    assert_eq!(health["encryption_failures"], 0, "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_group_room_reply_is_readable_by_every_member() {
    let env = TestEnv::start().await;
    let alice = env.human("alice").await;
    let bob = env.human("bob").await;
    let twin = env.twin_of("alice");
    let room = alice.create_room(&[&twin, &bob.user_id], false, true).await;
    alice.wait_for_join(&room, &twin, WAIT).await;
    bob.sync().await;
    bob.client.join_room_by_id(room.room_id()).await.unwrap();
    alice.wait_for_join(&room, &bob.user_id, WAIT).await;
    alice.sync().await;

    // In a group the twin answers when addressed.
    env.llm.push(fake_llm::Step::text("hello, both of you"));
    alice
        .send_text(&room, &format!("hello group and {twin}"))
        .await;
    let replies = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert_eq!(replies[0].body(), "hello, both of you");
    let bob_room = bob.room(&room.room_id().to_owned());
    let seen_by_bob = bob.wait_for_messages_from(&bob_room, &twin, 1, WAIT).await;
    assert_eq!(
        seen_by_bob[0].kind(),
        "m.room.message",
        "Bob decrypts the twin's reply"
    );
    assert_eq!(seen_by_bob[0].body(), "hello, both of you");
    assert_twin_never_sent_plaintext(&env, &alice, &room, twin.as_str()).await;
}

/// The twin's devices as the human's client knows them: (device id, ed25519 identity key).
async fn twin_devices(
    human: &Human,
    twin: &matrix_sdk::ruma::UserId,
) -> Vec<(
    matrix_sdk::ruma::OwnedDeviceId,
    Option<matrix_sdk::encryption::vodozemac::Ed25519PublicKey>,
)> {
    human
        .client
        .encryption()
        .get_user_devices(twin)
        .await
        .unwrap()
        .devices()
        .map(|d| (d.device_id().to_owned(), d.ed25519_key()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_the_device_the_identity_and_the_sessions() {
    let mut env = TestEnv::start().await;
    let (alice, room) = encrypted_dm(&env, "alice").await;
    let twin = env.twin_of("alice");
    alice.send_text(&room, "before restart").await;
    alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    let devices_before = twin_devices(&alice, &twin).await;
    assert_eq!(devices_before.len(), 1, "one device per twin");

    env.stop_service().await;
    env.start_service().await;
    alice.send_text(&room, "after restart").await;
    let replies = alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    assert_eq!(replies[1].kind(), "m.room.message");
    assert_eq!(replies[1].body(), "echo: after restart");
    alice.sync().await;
    let devices_after = twin_devices(&alice, &twin).await;
    assert_eq!(
        devices_after, devices_before,
        "same device, same identity key"
    );
    assert_twin_never_sent_plaintext(&env, &alice, &room, twin.as_str()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_of_the_human_decrypts_the_next_reply() {
    let env = TestEnv::start().await;
    let (user_id, password, _) = env.hs.register_user("alice").await;
    let alice = Human::login(env.hs.client_url(), "alice", &password).await;
    let twin = env.twin_of("alice");
    let room = alice.create_dm(&twin, true).await;
    alice.wait_for_join(&room, &twin, WAIT).await;
    alice.send_text(&room, "first").await;
    alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;

    let phone = Human::login(env.hs.client_url(), "alice", &password).await;
    assert_eq!(phone.user_id.as_str(), user_id);
    alice.sync().await;
    alice.send_text(&room, "second").await;
    let phone_room = phone.room(&room.room_id().to_owned());
    let seen = phone
        .wait_for_messages_from(&phone_room, &twin, 2, WAIT)
        .await;
    let second = seen
        .iter()
        .find(|m| m.json.pointer("/content/body").is_some() && m.body() == "echo: second");
    assert!(
        second.is_some(),
        "the new device decrypts the twin's next reply: {:?}",
        seen.iter().map(|m| m.json.to_string()).collect::<Vec<_>>()
    );
    assert_twin_never_sent_plaintext(&env, &alice, &room, twin.as_str()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_twins_device_is_cross_signed_by_its_owner() {
    let env = TestEnv::start().await;
    let (alice, room) = encrypted_dm(&env, "alice").await;
    let twin = env.twin_of("alice");
    alice.send_text(&room, "are you verified?").await;
    alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    alice.sync().await;
    let devices = alice
        .client
        .encryption()
        .get_user_devices(&twin)
        .await
        .unwrap();
    let device = devices
        .devices()
        .next()
        .expect("the twin's device is known");
    assert!(
        device.is_cross_signed_by_owner(),
        "Element shows no red shield for the twin's device"
    );
    let identity = alice
        .client
        .encryption()
        .get_user_identity(&twin)
        .await
        .unwrap();
    assert!(identity.is_some(), "the twin has a cross-signing identity");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_room_key_arrives_late_is_kept_and_answered_when_it_comes() {
    let env = TestEnv::start_with(env::EnvOptions {
        proxy: true,
        ..Default::default()
    })
    .await;
    let (alice, room) = encrypted_dm(&env, "alice").await;
    let twin = env.twin_of("alice");
    let proxy = env.proxy.as_ref().unwrap();
    proxy.hold_back_room_keys();

    alice.send_text(&room, "this key is slow").await;
    let health = || async {
        reqwest::get(format!("{}/health", env.appservice_url()))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    // The event arrives first and cannot be decrypted: it is kept, not dropped.
    let deadline = std::time::Instant::now() + WAIT;
    while health().await["undecrypted_events"] != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the undecryptable event was never kept"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(alice.messages_from(&room, &twin).await.is_empty());
    // The key comes; the kept event is decrypted and answered, once.
    // (The key may also come after this point, in a later transaction: it then goes straight
    // through, which is the same story.)
    proxy.release_room_keys().await;
    let replies = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert_eq!(replies[0].body(), "echo: this key is slow");
    assert_eq!(health().await["undecrypted_events"], 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(alice.messages_from(&room, &twin).await.len(), 1);
    assert_twin_never_sent_plaintext(&env, &alice, &room, twin.as_str()).await;
}

/// The service's `/health` answer.
async fn health(env: &TestEnv) -> Value {
    reqwest::get(format!("{}/health", env.appservice_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `/health` until `done` holds for it; returns that answer.
async fn wait_for_health(
    env: &TestEnv,
    what: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let health = health(env).await;
        if done(&health) {
            return health;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {timeout:?}; /health says {health}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_failure_sends_nothing_and_shows_in_health() {
    let env = TestEnv::start_with(env::EnvOptions {
        client_proxy: true,
        ..Default::default()
    })
    .await;
    let (alice, room) = encrypted_dm(&env, "alice").await;
    let twin = env.twin_of("alice");
    let faults = env.client_proxy.as_ref().unwrap();

    // The twin's first message in the room needs its room key shared by to-device first: with
    // to-device sends failing, the reply cannot be encrypted.
    faults.fail_paths_containing(Some("/sendToDevice/"));
    alice.send_text(&room, "you cannot answer this").await;
    let failed = wait_for_health(
        &env,
        "an encryption failure",
        Duration::from_secs(60),
        |h| h["encryption_failures"].as_u64().unwrap() > 0,
    )
    .await;
    assert!(faults.injected_failures() > 0, "the fault was hit");
    // Until the service gives up on the reply (it retries passing failures with backoff), the
    // event stays in the inbox; keep the fault on until then so no retry can get through.
    let gave_up = wait_for_health(&env, "the reply given up", Duration::from_secs(60), |h| {
        h["inbox_backlog"] == 0
    })
    .await;
    assert!(
        gave_up["encryption_failures"].as_u64() >= failed["encryption_failures"].as_u64(),
        "{gave_up}"
    );
    alice.sync().await;
    let from_twin: Vec<Value> = env
        .raw_events(&alice, &room)
        .await
        .into_iter()
        .filter(|e| e["sender"] == twin.as_str() && e.get("state_key").is_none())
        .collect();
    assert!(
        from_twin.is_empty(),
        "the twin sent nothing, neither encrypted nor plaintext: {from_twin:?}"
    );

    // The fault clears: the next message is answered, encrypted, and readable by the human.
    faults.fail_paths_containing(None);
    alice.send_text(&room, "and now?").await;
    let replies = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert_eq!(
        replies[0].kind(),
        "m.room.message",
        "decrypted by the human"
    );
    assert_eq!(replies[0].body(), "echo: and now?");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        alice.messages_from(&room, &twin).await.len(),
        1,
        "the lost reply is not sent late"
    );
    assert_twin_never_sent_plaintext(&env, &alice, &room, twin.as_str()).await;
    assert_eq!(
        health(&env).await["encryption_failures"],
        gave_up["encryption_failures"],
        "the successful reply counts no failure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecryptable_event_sends_a_key_request_to_the_senders_devices() {
    use matrix_sdk::ruma::events::room_key_request::ToDeviceRoomKeyRequestEvent;
    use std::sync::{Arc, Mutex};

    let env = TestEnv::start().await;
    let (alice, room) = encrypted_dm(&env, "alice").await;
    let twin = env.twin_of("alice");
    // Every `m.room_key_request` Alice's client receives: (sender, content).
    let requests: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let seen = requests.clone();
    alice
        .client
        .add_event_handler(move |event: ToDeviceRoomKeyRequestEvent| {
            let seen = seen.clone();
            async move {
                let content = serde_json::to_value(&event.content).unwrap();
                seen.lock()
                    .unwrap()
                    .push((event.sender.to_string(), content));
            }
        });
    // Alice's client blocks the twin's device: the key is sent neither in a transaction nor
    // into the device's inbox on the homeserver (where the twin looks first).
    alice.block_devices_of(&twin).await;

    let event_id = alice.send_text(&room, "where is my key?").await;
    let held = env
        .raw_events(&alice, &room)
        .await
        .into_iter()
        .find(|e| e["event_id"] == event_id.as_str())
        .expect("the message is on the homeserver");
    assert_eq!(held["type"], "m.room.encrypted");
    let session_id = held["content"]["session_id"].as_str().unwrap().to_owned();

    let deadline = std::time::Instant::now() + WAIT;
    let request = loop {
        alice.sync().await;
        let found = requests
            .lock()
            .unwrap()
            .iter()
            .find(|(sender, content)| sender == twin.as_str() && content["action"] == "request")
            .cloned();
        if let Some((_, content)) = found {
            break content;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no m.room_key_request from {twin} reached Alice's device; she saw: {:?}",
            requests.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    assert_eq!(
        request["body"]["room_id"],
        room.room_id().as_str(),
        "{request}"
    );
    assert_eq!(
        request["body"]["session_id"],
        session_id.as_str(),
        "{request}"
    );
    assert_eq!(
        request["body"]["algorithm"], "m.megolm.v1.aes-sha2",
        "{request}"
    );

    // Alice's client answers only devices it shared the session with, and the twin's machine
    // (matrix-sdk-crypto 0.18) accepts forwarded keys only from its own user's verified
    // devices: the event waits for its key (until it expires, as
    // crypto_faults::an_event_whose_key_never_comes_is_given_up_and_its_owner_told_once shows).
    assert_eq!(health(&env).await["undecrypted_events"], 1);
}
