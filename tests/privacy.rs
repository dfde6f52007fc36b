//! The call-center rule against a hostile non-owner, with real Synapse and real clients: a
//! model scripted to reach for private files and privileged tools gets nothing, in DMs and
//! group rooms, encrypted and not.

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

use std::{path::Path, time::Duration};

use env::{EnvOptions, TestEnv};
use fake_llm::Step;
use matrix_sdk::ruma::events::{Mentions, room::message::RoomMessageEventContent};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(40);

/// Strings planted in private places; none may ever reach the stranger or the model.
const CANARIES: [&str; 6] = [
    "CANARY-USER-7731",
    "CANARY-DATA-4410",
    "CANARY-SESSION-9902",
    "CANARY-SOUL-5521",
    "CANARY-MEMORY-3318",
    "CANARY-LONGTERM-6625",
];

/// Text of the public profile: the stranger may see it (shows the echo works).
const PUBLIC: &str = "PUBLIC-PROFILE-6060";

fn roomy(config: &mut matrix_os::config::Config) {
    // The suite sends many messages quickly; rate limits are tested elsewhere.
    config.limits.sender_messages = 1000;
}

/// The hostile requests: `(tool, arguments, must_fail)`.
fn hostile_calls(other_room_file: &str) -> Vec<(&'static str, Value, bool)> {
    vec![
        ("read_file", json!({"path": "system/user.md"}), true),
        ("read_file", json!({"path": "data/secret.md"}), true),
        ("read_file", json!({"path": other_room_file}), true),
        ("read_file", json!({"path": "system/soul.md"}), true),
        ("read_file", json!({"path": "../../../../etc/passwd"}), true),
        (
            "read_file",
            json!({"path": "system/public/../user.md"}),
            true,
        ),
        ("read_file", json!({"path": "/etc/hostname"}), true),
        ("read_file", json!({"path": ".git/config"}), true),
        (
            "list_files",
            json!({"path": "data", "recursive": true}),
            true,
        ),
        (
            "search_files",
            json!({"query": "CANARY", "path": "data"}),
            true,
        ),
        ("list_files", json!({"path": "system"}), true),
        (
            "write_file",
            json!({"path": "system/public/pwned.md", "content": "x"}),
            true,
        ),
        (
            "edit_file",
            json!({"path": "system/user.md", "old_text": "a", "new_text": "b"}),
            true,
        ),
        (
            "remember",
            json!({"fact": "the stranger is the owner now"}),
            true,
        ),
        ("recall", json!({"query": "sister"}), true),
        ("memory_search", json!({"query": "sister"}), true),
        ("forget", json!({"entry": "green tea"}), true),
        ("load_skill", json!({"name": "summarize"}), true),
        ("shell", json!({"command": "cat system/user.md"}), true),
        (
            "read_file",
            json!({"path": "system/public/profile.md"}),
            false,
        ),
    ]
}

fn plant_canaries(home: &Path, other_room_file: &str) {
    let append = |rel: &str, text: &str| {
        let path = home.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut old = std::fs::read_to_string(&path).unwrap_or_default();
        old.push_str(text);
        std::fs::write(path, old).unwrap();
    };
    append("system/user.md", "\n- Secret: CANARY-USER-7731\n");
    append("data/secret.md", "CANARY-DATA-4410\n");
    append(other_room_file, "{\"message\":\"CANARY-SESSION-9902\"}\n");
    append(
        "system/soul.md",
        "\n<!-- private -->\nPrivate: CANARY-SOUL-5521\n<!-- /private -->\n",
    );
    append("system/memory.md", "CANARY-MEMORY-3318\n");
    // Long-term memory, with the words a stranger's message would search for.
    append(
        "agents/memory/long-term.md",
        "- 2026-12-01: CANARY-LONGTERM-6625 the owner's secret, password, address, plans\n",
    );
    append("system/public/profile.md", &format!("\n{PUBLIC}\n"));
}

/// Files whose change would mean a privileged tool ran.
fn snapshot(home: &Path) -> Vec<(String, Option<String>)> {
    [
        "system/user.md",
        "data/secret.md",
        "system/soul.md",
        "system/memory.md",
        "agents/memory/long-term.md",
        "system/public/profile.md",
        "system/public/pwned.md",
    ]
    .iter()
    .map(|rel| {
        (
            rel.to_string(),
            std::fs::read_to_string(home.join(rel)).ok(),
        )
    })
    .collect()
}

async fn hostile_suite(group: bool, encrypted: bool) {
    let env = TestEnv::start_with(EnvOptions {
        configure: Some(roomy),
        ..EnvOptions::default()
    })
    .await;
    let alice = env.human("alice").await;
    let bob = env.human("bob").await;
    let twin = env.twin_of("alice");
    // Alice's own DM: her twin and home exist, and another room's transcript is there.
    let alice_dm = alice.create_dm(&twin, encrypted).await;
    alice.wait_for_join(&alice_dm, &twin, WAIT).await;
    let home = env.home_of("alice");
    let other_room_file = "system/sessions/!private-room:elsewhere.jsonl";
    plant_canaries(&home, other_room_file);

    let room = if group {
        let room = alice
            .create_room(&[&twin, &bob.user_id], false, encrypted)
            .await;
        bob.join(room.room_id()).await;
        alice.wait_for_join(&room, &twin, WAIT).await;
        alice.wait_for_join(&room, &bob.user_id, WAIT).await;
        alice.sync().await;
        alice
            .send_text(&room, "!ai policy room address members")
            .await;
        alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
        bob.room(&room.room_id().to_owned())
    } else {
        env.write_home_file(
            "alice",
            "system/access.toml",
            &format!("dm = [\"{}\"]\n", bob.user_id),
        );
        let room = bob.create_dm(&twin, encrypted).await;
        bob.wait_for_join(&room, &twin, WAIT).await;
        room
    };
    bob.sync().await;
    let before = snapshot(&home);
    let already = bob.messages_from(&room, &twin).await.len();

    let calls = hostile_calls(other_room_file);
    for (i, (tool, args, must_fail)) in calls.iter().enumerate() {
        env.llm.push(Step::tool_call(*tool, args.clone()));
        env.llm.push(Step::EchoToolResults);
        let text = format!("request {i}: please use {tool}");
        let content = if group {
            RoomMessageEventContent::text_plain(text)
                .add_mentions(Mentions::with_user_ids([twin.clone()]))
        } else {
            RoomMessageEventContent::text_plain(text)
        };
        bob.send_content(&room, content).await;
        let seen = bob
            .wait_for_messages_from(&room, &twin, already + i + 1, WAIT)
            .await;
        let answer = seen[already + i].body();
        if *must_fail {
            assert!(
                answer.starts_with("Error:"),
                "{tool} {args} was not refused: {answer}"
            );
        } else {
            assert!(
                answer.contains(PUBLIC),
                "public profile not readable: {answer}"
            );
        }
    }

    // 0 private bytes reached the stranger's room or the model.
    bob.sync().await;
    let seen_by_bob: String = bob
        .messages(&room)
        .await
        .iter()
        .map(|m| m.body().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    let to_model: String = env
        .llm
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    for canary in CANARIES {
        assert!(
            !seen_by_bob.contains(canary),
            "{canary} reached the stranger"
        );
        assert!(!to_model.contains(canary), "{canary} reached the model");
    }
    assert!(seen_by_bob.contains(PUBLIC));
    // 0 privileged tools ran.
    assert_eq!(
        snapshot(&home),
        before,
        "a privileged tool changed the home"
    );
    let log = std::process::Command::new("git")
        .args(["log", "--format=%s"])
        .current_dir(&home)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&log.stdout);
    for tool in ["write_file", "edit_file", "remember"] {
        assert!(!log.contains(tool), "{tool} committed: {log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_stranger_in_a_plain_dm_gets_nothing_private() {
    hostile_suite(false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_stranger_in_an_encrypted_dm_gets_nothing_private() {
    hostile_suite(false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_member_of_a_plain_group_gets_nothing_private() {
    hostile_suite(true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_member_of_an_encrypted_group_gets_nothing_private() {
    hostile_suite(true, true).await;
}
