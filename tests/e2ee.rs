//! End-to-end encryption with real Synapse and a real matrix-sdk client (the crypto Element
//! uses): twins read and write encrypted rooms, fed only by appservice transactions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, unreachable_pub)]

#[path = "support/env.rs"]
mod env;
#[path = "support/fake_llm.rs"]
mod fake_llm;
#[path = "support/human.rs"]
mod human;
#[path = "support/postgres.rs"]
mod postgres;
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
            assert_eq!(event["type"], "m.room.encrypted", "plaintext from the twin: {event}");
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
    assert!(env.llm.requests()[0].body.to_string().contains("a secret hello"));
    assert_twin_never_sent_plaintext(&env, &alice, &room, twin.as_str()).await;
    let health: Value = reqwest::get(format!("{}/health", env.appservice_url())).await.unwrap().json().await.unwrap();
    assert_eq!(health["undecrypted_events"], 0, "{health}");
    assert_eq!(health["encryption_failures"], 0, "{health}");
}
