//! Encryption under faults, end to end (real Synapse, matrix-sdk clients with E2EE): lost
//! devices heal, idle twins close and wake, one twin's broken machine costs no other twin its
//! keys, and a key arriving while its event is being kept is not missed.

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

use env::{EnvOptions, TestEnv};
use human::Human;
use matrix_sdk::{
    Room,
    ruma::{OwnedUserId, UserId},
};
use sqlx::{Connection, Executor};

const WAIT: Duration = Duration::from_secs(40);
const NEW_DEVICE: &str = "set up a new one";

async fn encrypted_dm(env: &TestEnv, owner: &str) -> (Human, Room) {
    let human = env.human(owner).await;
    let twin = env.twin_of(owner);
    let room = human.create_dm(&twin, true).await;
    human.wait_for_join(&room, &twin, WAIT).await;
    human.sync().await;
    (human, room)
}

/// The twin's devices as the human's client knows them: (id, cross-signed by the twin).
async fn twin_devices(human: &Human, twin: &UserId) -> Vec<(String, bool)> {
    human.sync().await;
    human
        .client
        .encryption()
        .get_user_devices(twin)
        .await
        .unwrap()
        .devices()
        .map(|d| (d.device_id().to_string(), d.is_cross_signed_by_owner()))
        .collect()
}

/// Waits until the twin has sent `count` messages containing `text` in `room`.
async fn wait_for_text(human: &Human, room: &Room, twin: &UserId, text: &str, count: usize) {
    let started = Instant::now();
    loop {
        human.sync().await;
        let seen = human
            .messages_from(room, twin)
            .await
            .iter()
            .filter(|m| m.body().contains(text))
            .count();
        if seen >= count {
            return;
        }
        assert!(started.elapsed() < WAIT, "no {text:?} from the twin");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends `text` until the twin answers it (the first tries may go to a device it lost).
async fn talk_until_answered(human: &Human, room: &Room, twin: &UserId, text: &str) {
    let started = Instant::now();
    let answer = format!("echo: {text}");
    loop {
        human.sync().await;
        human.send_text(room, text).await;
        let until = Instant::now() + Duration::from_secs(8);
        while Instant::now() < until {
            human.sync().await;
            if human
                .messages_from(room, twin)
                .await
                .iter()
                .any(|m| m.body() == answer)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            started.elapsed() < WAIT * 2,
            "the twin never answered {text:?}"
        );
    }
}

fn new_device_notices(seen: &[human::Seen]) -> usize {
    seen.iter()
        .filter(|m| m.body().contains(NEW_DEVICE))
        .count()
}

/// Twins closed after one idle second.
fn close_fast(config: &mut matrix_os::config::Config) {
    config.twins.idle_close_secs = 1;
}

/// Files of the crypto stores under `store_dir` this process holds open (the service runs in
/// the test's process).
fn open_store_files(store_dir: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| {
            target.starts_with(store_dir) && target.to_string_lossy().contains("sqlite3")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twin_whose_device_an_admin_deleted_gets_a_new_cross_signed_one_and_answers() {
    let env = TestEnv::start().await;
    let (alice, room) = encrypted_dm(&env, "alice").await;
    let twin = env.twin_of("alice");
    alice.send_text(&room, "before").await;
    alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    let before = twin_devices(&alice, &twin).await;
    assert_eq!(before.len(), 1);

    let admin = env.hs.register_admin("admin").await;
    let response = reqwest::Client::new()
        .delete(format!(
            "{}/_synapse/admin/v2/users/{}/devices/{}",
            env.hs.client_url(),
            twin,
            before[0].0
        ))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());

    // The twin notices (its own device list changed, or its next request as the device is
    // refused), makes a new device and tells Alice once; then it answers again.
    wait_for_text(&alice, &room, &twin, NEW_DEVICE, 1).await;
    talk_until_answered(&alice, &room, &twin, "after").await;
    let after = twin_devices(&alice, &twin).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after[0].0, before[0].0, "a new device");
    assert!(
        after[0].1,
        "the new device is cross-signed by the twin's identity"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        new_device_notices(&alice.messages_from(&room, &twin).await),
        1,
        "told once"
    );
    // The old store is kept aside, not deleted.
    let retired = env
        .config
        .encryption
        .store_dir
        .join(format!("alice{}", env.config.appservice.puppet_suffix))
        .join("retired");
    assert_eq!(std::fs::read_dir(retired).unwrap().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twin_answers_again_after_the_homeserver_database_was_replaced() {
    let mut env = TestEnv::start().await;
    let (alice, room) = encrypted_dm(&env, "alice").await;
    let twin = env.twin_of("alice");
    alice.send_text(&room, "before the reset").await;
    alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    drop(alice);

    // Every account, room and key of the homeserver is gone; the service keeps its data.
    env.hs.reset_database().await;
    let (alice, room) = encrypted_dm(&env, "alice").await;
    talk_until_answered(&alice, &room, &twin, "after the reset").await;
    let devices = twin_devices(&alice, &twin).await;
    assert_eq!(devices.len(), 1);
    assert!(devices[0].1, "cross-signed by a fresh identity");
    wait_for_text(&alice, &room, &twin, NEW_DEVICE, 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        new_device_notices(&alice.messages_from(&room, &twin).await),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_twin_is_closed_and_wakes_for_a_new_room_key_and_message() {
    let env = TestEnv::start_with(EnvOptions {
        configure: Some(close_fast),
        ..Default::default()
    })
    .await;
    let (alice, room) = encrypted_dm(&env, "alice").await;
    let twin = env.twin_of("alice");
    alice.send_text(&room, "one").await;
    alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;

    let started = Instant::now();
    while env.metric("matrixos_twins_closed_total").await < 1.0
        || env.metric("matrixos_twins_open").await > 0.0
    {
        assert!(started.elapsed() < WAIT, "the idle twin was never closed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Closed means closed: no file of the twin's crypto store stays open (the service runs in
    // this process), so its write-ahead log is gone and it holds no memory.
    let store_dir = std::fs::canonicalize(&env.config.encryption.store_dir).unwrap();
    let started = Instant::now();
    while open_store_files(&store_dir) > 0 {
        assert!(
            started.elapsed() < WAIT,
            "{} crypto store files still open after the twin was closed",
            open_store_files(&store_dir)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A new room key (a new Megolm session) and a message, both while the twin is closed.
    room.discard_room_key().await.unwrap();
    alice.send_text(&room, "two").await;
    let replies = alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    assert_eq!(replies[1].body(), "echo: two");
    assert_eq!(
        env.metric("matrixos_undecryptable_events_waiting").await,
        0.0
    );
}

/// Synapse retries a transaction it could not deliver with its events only: the to-device
/// messages of that time (a new room key) never come in a transaction. The twin reads them
/// from its device's inbox on the homeserver when the key is missing, and answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_key_sent_while_the_service_was_down_is_read_from_the_homeserver() {
    let mut env = TestEnv::start().await;
    let (alice, room) = encrypted_dm(&env, "alice").await;
    let twin = env.twin_of("alice");
    alice.send_text(&room, "one").await;
    alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;

    env.stop_service().await;
    room.discard_room_key().await.unwrap();
    alice.send_text(&room, "two").await;
    env.start_service().await;
    let replies = alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    assert_eq!(replies[1].body(), "echo: two");
    assert_eq!(
        env.metric("matrixos_undecryptable_events_waiting").await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_machine_of_one_twin_costs_another_twin_of_the_transaction_nothing() {
    let env = TestEnv::start_with(EnvOptions {
        configure: Some(close_fast),
        ..Default::default()
    })
    .await;
    // Alice's and Bob's twins share an encrypted room with Bob.
    let alice = env.human("alice").await;
    let bob = env.human("bob").await;
    let alice_twin = env.twin_of("alice");
    let bob_twin = env.twin_of("bob");
    let room = alice
        .create_room(&[&alice_twin, &bob.user_id], false, true)
        .await;
    alice.wait_for_join(&room, &alice_twin, WAIT).await;
    bob.sync().await;
    let bob_room = bob.join(room.room_id()).await;
    bob.sync().await;
    bob_room.invite_user_by_id(&bob_twin).await.unwrap();
    bob.wait_for_join(&bob_room, &bob_twin, WAIT).await;
    bob.send_text(&bob_room, &format!("{bob_twin} hello")).await;
    bob.wait_for_messages_from(&bob_room, &bob_twin, 1, WAIT)
        .await;

    // Both twins close; then Alice's twin's store is destroyed, so its machine cannot open.
    let started = Instant::now();
    while env.metric("matrixos_twins_open").await > 0.0 {
        assert!(started.elapsed() < WAIT, "the twins were never closed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let alice_dir = env.config.encryption.store_dir.join(alice_twin.localpart());
    let device = std::fs::read_to_string(alice_dir.join("device_id")).unwrap();
    let store = alice_dir
        .join(device.trim())
        .join("matrix-sdk-crypto.sqlite3");
    std::fs::write(&store, b"this is not a database").unwrap();

    // One transaction brings the new room key to both twins; Bob's twin still reads it.
    bob_room.discard_room_key().await.unwrap();
    bob.send_text(&bob_room, &format!("{bob_twin} still there?"))
        .await;
    let replies = bob
        .wait_for_messages_from(&bob_room, &bob_twin, 2, WAIT)
        .await;
    assert!(
        replies[1].body().contains("still there?"),
        "{}",
        replies[1].body()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_arriving_while_its_event_is_being_kept_is_not_missed() {
    let env = TestEnv::start_with(EnvOptions {
        proxy: true,
        ..Default::default()
    })
    .await;
    let (alice, room) = encrypted_dm(&env, "alice").await;
    let twin = env.twin_of("alice");
    alice.send_text(&room, "warm up").await;
    alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;

    // The key comes after its event (the proxy holds it back until it is released), and the
    // database is busy while the event that cannot be decrypted is being kept: the key is
    // handled in the very window between the failed decryption and the row being written.
    let proxy = env.proxy.as_ref().unwrap();
    proxy.hold_back_room_keys();
    let url = format!("sqlite://{}", env.sqlite_path().display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    db.execute("BEGIN IMMEDIATE").await.unwrap();
    room.discard_room_key().await.unwrap();
    alice.send_text(&room, "mind the gap").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Released while the database is still locked: the key's transaction waits on the
    // database alongside the kept event, and the lock goes half a second later.
    let (_, committed) = tokio::join!(proxy.release_room_keys(), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        db.execute("COMMIT").await
    });
    committed.unwrap();
    let replies = alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    assert_eq!(replies[1].body(), "echo: mind the gap");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(alice.messages_from(&room, &twin).await.len(), 2, "once");
    assert_eq!(
        env.metric("matrixos_undecryptable_events_waiting").await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_key_never_comes_is_given_up_and_its_owner_told_once() {
    fn expire_fast(config: &mut matrix_os::config::Config) {
        config.encryption.undecryptable_expiry_secs = 2;
    }
    let env = TestEnv::start_with(EnvOptions {
        configure: Some(expire_fast),
        ..Default::default()
    })
    .await;
    let (alice, room) = encrypted_dm(&env, "alice").await;
    let twin = env.twin_of("alice");
    alice.send_text(&room, "warm up").await;
    alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;

    // The key never reaches the twin: Alice's client blocks its device, so no room key is sent
    // to it (neither in a transaction nor into its inbox on the homeserver, where the twin
    // looks when a key is missing).
    alice.block_devices_of(&twin).await;
    room.discard_room_key().await.unwrap();
    alice.send_text(&room, "lost in transit").await;
    wait_for_text(
        &alice,
        &room,
        &twin,
        "could not read 1 encrypted message",
        1,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let seen = alice.messages_from(&room, &twin).await;
    assert!(
        !seen.iter().any(|m| m.body().contains("lost in transit")),
        "a given-up event is not answered"
    );
    assert_eq!(
        seen.iter()
            .filter(|m| m.body().contains("could not read"))
            .count(),
        1
    );
    assert_eq!(
        env.metric("matrixos_undecryptable_expired_total").await,
        1.0
    );
    assert_eq!(
        env.metric("matrixos_undecryptable_events_waiting").await,
        0.0
    );
}

/// Twins provisioned through the appservice user query (as a homeserver asks when someone
/// invites `@x_ai`) are all closed once idle: none keeps its crypto store open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twins_provisioned_by_user_queries_are_all_closed_when_idle() {
    let env = TestEnv::start_with(EnvOptions {
        configure: Some(close_fast),
        ..Default::default()
    })
    .await;
    const OWNERS: usize = 12;
    let server = env.server_name().to_owned();
    let token = env.registration.hs_token.expose().to_owned();
    let client = reqwest::Client::new();
    let mut first_password = String::new();
    for n in 0..OWNERS {
        let (_, password, _) = env.hs.register_user(&format!("many{n}")).await;
        if n == 0 {
            first_password = password;
        }
        let url = format!(
            "{}/_matrix/app/v1/users/@many{n}_ai:{server}",
            env.appservice_url()
        );
        let answer = client.get(url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    }
    let store_dir = std::fs::canonicalize(&env.config.encryption.store_dir).unwrap();
    let devices = || {
        (0..OWNERS)
            .filter(|n| {
                let dir = store_dir.join(format!("many{n}_ai"));
                std::fs::read_dir(dir).is_ok_and(|d| d.count() > 1)
            })
            .count()
    };
    let started = Instant::now();
    while devices() < OWNERS {
        assert!(
            started.elapsed() < WAIT * 2,
            "{} of {OWNERS} devices set up",
            devices()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The first owner shares an encrypted DM with their twin and keeps logging in new devices:
    // every login is device-list news in the transactions, which every open machine is given.
    // News is not use: the machines still close.
    let owner = Human::login(env.hs.client_url(), "many0", &first_password).await;
    let twin: OwnedUserId = format!("@many0_ai:{server}").try_into().unwrap();
    let dm = owner.create_dm(&twin, true).await;
    owner.wait_for_join(&dm, &twin, WAIT).await;
    let noise = {
        let url = env.hs.client_url().to_owned();
        tokio::spawn(async move {
            let mut logins = Vec::new();
            loop {
                logins.push(Human::login(&url, "many0", &first_password).await);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let started = Instant::now();
    while open_store_files(&store_dir) > 0 || env.metric("matrixos_twins_open").await > 0.0 {
        assert!(
            started.elapsed() < WAIT,
            "{} crypto store files still open, {} twins open",
            open_store_files(&store_dir),
            env.metric("matrixos_twins_open").await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    noise.abort();
}
