//! Ingest with a slow model: for 60 s, transactions of 100 messages (50 owners writing to their
//! twins in real rooms of a local Synapse) are sent to the service one at a time, as a
//! homeserver does, while every turn's model call takes 200 ms. Prints the ack latency, the
//! events acked and handled per second, and the memory before, during and after: the backlog
//! waits in the database, not in memory.
//!
//! `cargo bench --bench backlog` (release build). Figures, not assertions.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    dead_code,
    unreachable_pub
)]
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
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId};
use synapse::{TestHomeserver, free_port};

const OWNERS: usize = 50;
const EVENTS_PER_TXN: usize = 100;
const RUN: Duration = Duration::from_secs(60);
const MODEL_DELAY: Duration = Duration::from_millis(200);

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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// The service's `/metrics` text.
async fn scrape(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A metric's value from `/metrics` (first sample).
async fn metric(http: &reqwest::Client, base: &str, name: &str) -> f64 {
    scrape(http, base)
        .await
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// The service's own `matrixos_ack_duration_seconds` histogram, as "share of acks within each
/// bound": what the service spends, without the client and HTTP around it.
async fn server_side_acks(http: &reqwest::Client, base: &str) -> String {
    let text = scrape(http, base).await;
    let buckets: Vec<(String, f64)> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("matrixos_ack_duration_seconds_bucket{le=\"")?;
            let (le, value) = rest.split_once("\"} ")?;
            Some((le.to_owned(), value.parse().ok()?))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |(_, n)| *n).max(1.0);
    buckets
        .iter()
        .filter(|(le, _)| le != "+Inf")
        .map(|(le, n)| {
            let ms = le.parse::<f64>().unwrap_or(0.0) * 1000.0;
            format!("<= {ms} ms {:.1} %", n / total * 100.0)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main]
async fn main() {
    let llm = FakeLlm::start().await;
    llm.slow_when("load", MODEL_DELAY);
    let pending = TestHomeserver::reserve();
    let port = free_port();
    let config = pending.appservice_config(&format!("http://127.0.0.1:{port}"));
    let registration = Registration::generate(&config);
    registration
        .write(&config.appservice.registration, true)
        .unwrap();
    let hs = pending.start(Some(&registration)).await;
    let dir = hs.dir().join("service");
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("config.toml");
    std::fs::write(
        &config_path,
        format!(
            "[homeserver]\nurl = \"{}\"\nserver_name = \"{}\"\n[appservice]\nurl = \"http://127.0.0.1:{port}\"\n\
             listen = \"127.0.0.1:{port}\"\nregistration = \"{}\"\n[database]\nurl = \"sqlite://bench.db\"\n\
             [home]\ndir = \"homes\"\n[encryption]\nstore_dir = \"crypto\"\n\
             [llm]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"fake\"\napi_key_env = \"MATRIX_OS_BENCH_KEY\"\n",
            hs.client_url(),
            hs.server_name(),
            config.appservice.registration.display(),
            llm.openai_base(),
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_matrix-os"))
        .args(["serve", "-c"])
        .arg(&config_path)
        .env("MATRIX_OS_BENCH_KEY", "bench")
        .env("RUST_LOG", "error")
        .spawn()
        .expect("start matrix-os");
    let service = Service(child);
    let pid = service.0.id();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Fifty owners, each in a DM with their twin.
    let mut rooms: Vec<(OwnedUserId, OwnedRoomId)> = Vec::new();
    let mut humans = Vec::new();
    for i in 0..OWNERS {
        let name = format!("owner{i}");
        let (_, password, _) = hs.register_user(&name).await;
        let human = Human::login(hs.client_url(), &name, &password).await;
        let twin: OwnedUserId = format!("@{name}_ai:{}", hs.server_name())
            .try_into()
            .unwrap();
        let room = human.create_room(&[&twin], true, false).await;
        human
            .wait_for_join(&room, &twin, Duration::from_secs(120))
            .await;
        rooms.push((human.user_id.clone(), room.room_id().to_owned()));
        humans.push(human);
    }
    let base = format!("http://127.0.0.1:{port}");
    let url = format!("{base}/_matrix/app/v1/transactions");
    let token = registration.hs_token.expose().to_owned();
    let http = reqwest::Client::new();
    let rss_before = rss_kib(pid);
    let turns_before = metric(&http, &base, "matrixos_turns_total").await;
    let waiting_before = metric(&http, &base, "matrixos_inbox_depth").await;
    let received_before = metric(&http, &base, "matrixos_events_received_total").await;

    println!(
        "ingest with a slow model ({} ms a call): {EVENTS_PER_TXN} events per transaction, one \
         transaction at a time, {} s, {OWNERS} rooms",
        MODEL_DELAY.as_millis(),
        RUN.as_secs()
    );
    let mut acks = Vec::new();
    let mut rss_max = rss_before;
    let mut n = 0usize;
    let started = Instant::now();
    while started.elapsed() < RUN {
        let events: Vec<serde_json::Value> = (0..EVENTS_PER_TXN)
            .map(|_| {
                n += 1;
                let (owner, room) = &rooms[n % OWNERS];
                serde_json::json!({
                    "type": "m.room.message",
                    "room_id": room,
                    "sender": owner,
                    "event_id": format!("$load{n}"),
                    "origin_server_ts": 1_700_000_000_000u64 + n as u64,
                    "content": {"msgtype": "m.text", "body": format!("load {n}")},
                })
            })
            .collect();
        let body = serde_json::json!({ "events": events });
        let sent = Instant::now();
        let response = http
            .put(format!("{url}/load{n}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        acks.push(sent.elapsed());
        assert!(response.status().is_success(), "{}", response.status());
        if acks.len() % 100 == 0 {
            rss_max = rss_max.max(rss_kib(pid));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let waiting = metric(&http, &base, "matrixos_inbox_depth").await - waiting_before;
    // Everything that came in meanwhile: the load, and the homeserver's echoes of the replies.
    let received = metric(&http, &base, "matrixos_events_received_total").await - received_before;
    let turns = metric(&http, &base, "matrixos_turns_total").await - turns_before;
    let queue_max = metric(&http, &base, "matrixos_room_queue_depth_max").await;
    let rss_end = rss_kib(pid);
    let server_acks = server_side_acks(&http, &base).await;
    acks.sort();
    println!(
        "acked:   {n} events in {:.0} s = {:.0} events/s ({} transactions); ack p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        elapsed,
        n as f64 / elapsed,
        acks.len(),
        percentile(&acks, 0.5).as_secs_f64() * 1000.0,
        percentile(&acks, 0.99).as_secs_f64() * 1000.0,
        acks.last().unwrap().as_secs_f64() * 1000.0,
    );
    println!("ack inside the service: {server_acks}");
    println!(
        "handled: {:.0} events/s end to end ({turns:.0} turns answered, {:.1} turns/s); {waiting:.0} still waiting in the inbox; fullest room queue {queue_max:.0}",
        (received - waiting) / elapsed,
        turns / elapsed,
    );
    println!(
        "RSS: {:.1} MiB before, {:.1} MiB at most while ingesting, {:.1} MiB after",
        rss_before as f64 / 1024.0,
        rss_max as f64 / 1024.0,
        rss_end as f64 / 1024.0
    );
    drop(service);
}
