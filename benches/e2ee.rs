//! Encryption overhead: a DM round trip (human -> twin -> human, zero-latency fake model) in an
//! unencrypted and in an encrypted room, measured side by side in one run; then the memory
//! (RSS) of the service, run as the real binary, with 50 twins in encrypted rooms.
//!
//! `cargo bench --bench e2ee`. Figures, not assertions.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    dead_code,
    unreachable_pub
)]
// matrix-sdk's sync future is deep.
#![recursion_limit = "256"]

#[path = "../tests/support/fake_llm.rs"]
mod fake_llm;
#[path = "../tests/support/human.rs"]
mod human;
#[path = "../tests/support/synapse.rs"]
mod synapse;

use std::{
    process::{Child, Command},
    time::{Duration, Instant},
};

use fake_llm::FakeLlm;
use human::Human;
use matrix_os::registration::Registration;
use matrix_sdk::{
    config::SyncSettings,
    ruma::{OwnedRoomId, OwnedUserId, events::room::message::OriginalSyncRoomMessageEvent},
};
use synapse::{TestHomeserver, free_port};
use tokio::sync::mpsc;

const ROUNDS: usize = 30;
const TWINS_FOR_RSS: usize = 50;

/// (room, sender, body, origin_server_ts in ms) of every message the human's client sees.
type Replies = mpsc::UnboundedReceiver<(OwnedRoomId, OwnedUserId, String, u64)>;

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Replies seen by a human's sync loop (decrypted by the SDK): (room, sender, body).
fn listen(human: &Human) -> Replies {
    let (tx, rx) = mpsc::unbounded_channel();
    human.client.add_event_handler(
        move |event: OriginalSyncRoomMessageEvent, room: matrix_sdk::Room| {
            let tx = tx.clone();
            async move {
                let ts = u64::from(event.origin_server_ts.get());
                let _ = tx.send((
                    room.room_id().to_owned(),
                    event.sender,
                    event.content.body().to_owned(),
                    ts,
                ));
            }
        },
    );
    let client = human.client.clone();
    tokio::spawn(async move {
        let _ = client
            .sync(SyncSettings::default().timeout(Duration::from_secs(5)))
            .await;
    });
    rx
}

/// Returns (as the client saw it, as the homeserver's timestamps say: message to reply).
async fn round_trip(
    human: &Human,
    room: &matrix_sdk::Room,
    twin: &OwnedUserId,
    rx: &mut Replies,
    n: usize,
) -> (Duration, Duration) {
    let text = format!("ping {n} {}", room.room_id());
    let expected = format!("echo: {text}");
    let started = Instant::now();
    human.send_text(room, &text).await;
    let mut sent_ts = None;
    loop {
        let (room_id, sender, body, ts) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("reply in time")
            .expect("sync alive");
        if room_id != room.room_id() {
            continue;
        }
        if sender == human.user_id && body == text {
            sent_ts = Some(ts);
        }
        if sender == *twin && body == expected {
            let server = ts.saturating_sub(sent_ts.unwrap_or(ts));
            return (started.elapsed(), Duration::from_millis(server));
        }
    }
}

fn summary(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64;
    (
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() * 9 / 10]),
        mean,
    )
}

#[tokio::main]
async fn main() {
    let llm = FakeLlm::start().await;
    let pending = TestHomeserver::reserve();
    let port = free_port();
    let config = pending.appservice_config(&format!("http://127.0.0.1:{port}"));
    let registration = Registration::generate(&config);
    registration
        .write(&config.appservice.registration, true)
        .unwrap();
    let hs = pending.start(Some(&registration)).await;
    let config_path = hs.dir().join("bench-config.toml");
    std::fs::write(
        &config_path,
        format!(
            "[homeserver]\nurl = \"{}\"\nserver_name = \"{}\"\n[appservice]\nurl = \"http://127.0.0.1:{port}\"\n\
             listen = \"127.0.0.1:{port}\"\nregistration = \"{}\"\n[database]\nurl = \"sqlite://{}\"\n[home]\n\
             dir = \"{}\"\n[encryption]\nstore_dir = \"{}\"\n[llm]\nprovider = \"openai\"\nbase_url = \"{}\"\n\
             model = \"fake\"\napi_key_env = \"MATRIX_OS_BENCH_KEY\"\n",
            hs.client_url(),
            hs.server_name(),
            config.appservice.registration.display(),
            hs.dir().join("bench.db").display(),
            hs.dir().join("homes").display(),
            hs.dir().join("crypto").display(),
            llm.openai_base(),
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_matrix-os"))
        .args(["serve", "-c"])
        .arg(&config_path)
        .env("MATRIX_OS_BENCH_KEY", "bench")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("start matrix-os");
    let service = Service(child);
    let pid = service.0.id();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Side by side: one human, a plain and an encrypted room with the same twin, alternating.
    let (_, password, _) = hs.register_user("alice").await;
    let alice = Human::login(hs.client_url(), "alice", &password).await;
    let twin: OwnedUserId = format!("@alice_ai:{}", hs.server_name())
        .try_into()
        .unwrap();
    let plain = alice.create_room(&[&twin], true, false).await;
    alice
        .wait_for_join(&plain, &twin, Duration::from_secs(30))
        .await;
    let secret = alice.create_room(&[&twin], true, true).await;
    alice
        .wait_for_join(&secret, &twin, Duration::from_secs(30))
        .await;
    let mut replies = listen(&alice);
    // Warm-up: Olm sessions, room keys, caches.
    round_trip(&alice, &plain, &twin, &mut replies, 0).await;
    round_trip(&alice, &secret, &twin, &mut replies, 0).await;
    let (mut plain_times, mut secret_times) = (Vec::new(), Vec::new());
    let (mut plain_client, mut secret_client) = (Vec::new(), Vec::new());
    for n in 1..=ROUNDS {
        let (client, server) = round_trip(&alice, &plain, &twin, &mut replies, n).await;
        plain_client.push(client);
        plain_times.push(server);
        let (client, server) = round_trip(&alice, &secret, &twin, &mut replies, n).await;
        secret_client.push(client);
        secret_times.push(server);
    }
    let (c50, _, _) = summary(plain_client);
    let (d50, _, _) = summary(secret_client);
    let (p50, p90, pmean) = summary(plain_times);
    let (e50, e90, emean) = summary(secret_times);
    println!(
        "DM round trip, human -> twin -> human, zero-latency fake model, {ROUNDS} rounds each, alternating"
    );
    println!("measured between the homeserver's timestamps of the message and of the reply:");
    println!(
        "{:<12} {:>9} {:>9} {:>9}",
        "room", "p50 ms", "p90 ms", "mean ms"
    );
    println!(
        "{:<12} {:>9.1} {:>9.1} {:>9.1}",
        "unencrypted", p50, p90, pmean
    );
    println!(
        "{:<12} {:>9.1} {:>9.1} {:>9.1}",
        "encrypted", e50, e90, emean
    );
    println!(
        "ratio encrypted/unencrypted: p50 {:.2}x, mean {:.2}x (target: within 1.3x)",
        e50 / p50,
        emean / pmean
    );
    println!(
        "as the test client saw it (send call to reply in its sync, includes matrix-sdk's own latency): \
         p50 {c50:.0} ms unencrypted, {d50:.0} ms encrypted"
    );

    // Memory with 50 more twins, each in an encrypted room it has answered in.
    let rss_one = rss_kib(pid);
    let mut humans = Vec::new();
    for i in 0..TWINS_FOR_RSS {
        let name = format!("user{i}");
        let (_, password, _) = hs.register_user(&name).await;
        let human = Human::login(hs.client_url(), &name, &password).await;
        let twin: OwnedUserId = format!("@{name}_ai:{}", hs.server_name())
            .try_into()
            .unwrap();
        let room = human.create_room(&[&twin], true, true).await;
        human
            .wait_for_join(&room, &twin, Duration::from_secs(60))
            .await;
        human.send_text(&room, "hello").await;
        humans.push((human, room, twin));
    }
    for (human, room, twin) in &humans {
        human
            .wait_for_messages_from(room, twin, 1, Duration::from_secs(180))
            .await;
    }
    println!(
        "service RSS: {} MiB with 1 twin, {} MiB with {} twins in encrypted rooms (each answered once)",
        rss_one / 1024,
        rss_kib(pid) / 1024,
        TWINS_FOR_RSS + 1
    );
    drop(service);
}
