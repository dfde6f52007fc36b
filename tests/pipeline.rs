//! The event pipeline under load and faults, end to end (real Synapse, the service in-process,
//! the fake model, matrix-sdk clients): bounded room queues, a turn that never runs twice,
//! metrics that move, homes that never mix.

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

use std::time::{Duration, Instant};

use env::{EnvOptions, TestEnv, metric_value};
use human::Human;
use matrix_sdk::Room;
use serde_json::json;
use sqlx::{Connection, Executor};

const WAIT: Duration = Duration::from_secs(40);

async fn dm_with_twin(env: &TestEnv, owner: &str) -> (Human, Room) {
    let human = env.human(owner).await;
    let twin = env.twin_of(owner);
    let room = human.create_dm(&twin, false).await;
    human.wait_for_join(&room, &twin, WAIT).await;
    (human, room)
}

/// Model requests whose last user text holds `marker`.
fn turns_about(env: &TestEnv, marker: &str) -> usize {
    env.llm
        .requests()
        .iter()
        .filter(|r| {
            r.body["messages"]
                .as_array()
                .and_then(|m| m.last())
                .is_some_and(|m| m.to_string().contains(marker))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_room_stays_bounded_answers_every_message_once_and_never_delays_another() {
    fn small_queues(config: &mut matrix_os::config::Config) {
        config.rooms.queue_capacity = 4;
    }
    let env = TestEnv::start_with(EnvOptions {
        configure: Some(small_queues),
        ..Default::default()
    })
    .await;
    let (alice, flooded) = dm_with_twin(&env, "alice").await;
    let (bob, quiet) = dm_with_twin(&env, "bob").await;
    let alice_twin = env.twin_of("alice");
    let bob_twin = env.twin_of("bob");
    env.llm.slow_when("flood", Duration::from_millis(300));

    const FLOOD: usize = 30;
    for i in 0..FLOOD {
        alice.send_text(&flooded, &format!("flood {i}")).await;
    }
    // While the flood is worked off: the queue never holds more than its bound, the rest waits
    // in the inbox (on disk), and another room is answered at once.
    let mut deepest = 0.0_f64;
    let mut most_waiting = 0.0_f64;
    let started = Instant::now();
    while turns_about(&env, "flood") < 3 {
        assert!(started.elapsed() < WAIT, "the flood is not being answered");
        let scrape = env.metrics().await;
        deepest = deepest.max(metric_value(&scrape, "matrixos_room_queue_depth_max"));
        most_waiting = most_waiting.max(metric_value(&scrape, "matrixos_inbox_depth"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bob.send_text(&quiet, "are you free?").await;
    let quick = bob.wait_for_messages_from(&quiet, &bob_twin, 1, WAIT).await;
    assert_eq!(quick[0].body(), "echo: are you free?");
    let answered_meanwhile = alice.messages_from(&flooded, &alice_twin).await.len();
    assert!(
        answered_meanwhile < FLOOD / 2,
        "Bob was answered only after {answered_meanwhile} of the flood"
    );
    while alice.messages_from(&flooded, &alice_twin).await.len() < FLOOD {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "flood not answered"
        );
        let scrape = env.metrics().await;
        deepest = deepest.max(metric_value(&scrape, "matrixos_room_queue_depth_max"));
        most_waiting = most_waiting.max(metric_value(&scrape, "matrixos_inbox_depth"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(deepest <= 4.0, "a queue held {deepest} events");
    assert!(
        most_waiting > 4.0,
        "the backlog should have waited in the inbox ({most_waiting})"
    );
    assert_eq!(
        metric_value(&env.metrics().await, "matrixos_room_queue_capacity"),
        4.0
    );
    // Every message once, in order, and the model asked once per message.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let replies = alice.messages_from(&flooded, &alice_twin).await;
    let bodies: Vec<String> = replies.iter().map(|r| r.body().to_owned()).collect();
    let expected: Vec<String> = (0..FLOOD).map(|i| format!("echo: flood {i}")).collect();
    assert_eq!(bodies, expected);
    assert_eq!(turns_about(&env, "flood"), FLOOD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_failure_after_a_turn_does_not_ask_the_model_again() {
    let env = TestEnv::start().await;
    let (alice, room) = dm_with_twin(&env, "alice").await;
    let twin = env.twin_of("alice");

    // The database refuses to store session messages: the turn cannot be recorded.
    let url = format!("sqlite://{}", env.sqlite_path().display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    db.execute(
        "CREATE TRIGGER injected_fault BEFORE INSERT ON session_messages \
         BEGIN SELECT RAISE(FAIL, 'injected fault'); END",
    )
    .await
    .unwrap();
    alice.send_text(&room, "remember this once").await;
    let replies = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert_eq!(replies[0].body(), "echo: remember this once");
    // Long enough for every retry an older design would have made.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        turns_about(&env, "remember this once"),
        1,
        "the model ran again"
    );
    assert_eq!(alice.messages_from(&room, &twin).await.len(), 1);
    let scrape = env.metrics().await;
    let storage_errors: f64 = scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == "matrixos_turn_errors_total" && s.labels.get("kind") == Some("storage")
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) => v,
            _ => 0.0,
        })
        .sum();
    assert_eq!(storage_errors, 1.0);

    // The database works again: so does the twin.
    db.execute("DROP TRIGGER injected_fault").await.unwrap();
    alice.send_text(&room, "and now?").await;
    let replies = alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    assert_eq!(replies[1].body(), "echo: and now?");
    assert_eq!(turns_about(&env, "and now?"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text_and_move_when_a_message_is_handled() {
    let env = TestEnv::start().await;
    let (alice, room) = dm_with_twin(&env, "alice").await;
    let twin = env.twin_of("alice");
    let before = env.metrics().await;

    alice.send_text(&room, "count me").await;
    alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    let after = env.metrics().await;
    for name in [
        "matrixos_transactions_received_total",
        "matrixos_events_received_total",
        "matrixos_turns_total",
        "matrixos_model_calls_total",
        "matrixos_sends_total",
    ] {
        assert!(
            metric_value(&after, name) > metric_value(&before, name),
            "{name} did not move"
        );
    }
    let text = reqwest::get(format!("{}/metrics", env.appservice_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("matrixos_turn_duration_seconds_bucket"));
    // No user, room or message in any label or value.
    for forbidden in [
        alice.user_id.as_str(),
        twin.as_str(),
        room.room_id().as_str(),
        "count me",
    ] {
        assert!(!text.contains(forbidden), "{forbidden} is in /metrics");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_whose_localparts_differ_only_by_a_leading_dot_get_different_homes() {
    let env = TestEnv::start().await;
    let token = env.registration.hs_token.expose().to_owned();
    let server = env.server_name().to_owned();
    // Invites as the homeserver would push them: each twin gets ready (its home first).
    for (n, owner) in [".x", "_.x"].into_iter().enumerate() {
        env.hs.register_user(owner).await;
        let invite = json!({"events": [{
            "type": "m.room.member",
            "room_id": format!("!room{n}:{server}"),
            "event_id": format!("$invite{n}"),
            "sender": format!("@{owner}:{server}"),
            "state_key": format!("@{owner}_ai:{server}"),
            "content": {"membership": "invite", "is_direct": true},
        }]});
        let response = env
            .put_transaction(&format!("t{n}"), &invite.to_string(), Some(&token))
            .await;
        assert_eq!(response.status(), 200);
    }
    let homes = env.config.home.dir.clone();
    let started = Instant::now();
    let folders = loop {
        let mut folders: Vec<String> = std::fs::read_dir(&homes)
            .map(|dir| {
                dir.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| !name.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        folders.sort();
        if folders.len() >= 2 || started.elapsed() > WAIT {
            break folders;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(folders, ["%2ex", "_.x"], "two owners, two homes");
    for folder in &folders {
        assert!(
            homes.join(folder).join(".git").exists(),
            "{folder} is a home"
        );
    }
    // Each twin's crypto store is opened after its home: wait for both.
    let crypto = &env.config.encryption.store_dir;
    let started = Instant::now();
    let stores = ["%2ex_ai", "_.x_ai"];
    while !stores.iter().all(|s| crypto.join(s).exists()) && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for store in stores {
        assert!(
            crypto.join(store).exists(),
            "{store} has its own crypto store"
        );
    }
}
