//! Many twins: the provisioning rate (user queries as the homeserver sends them, against a
//! local Synapse), then the memory (RSS) and the service-owned disk (database, crypto stores,
//! homes) with 1,000 and with 10,000 provisioned twins, 50 of them active in encrypted rooms.
//!
//! `cargo bench --bench twins` (release build; `MATRIX_OS_BENCH_TWINS=2000` for a shorter run).
//! Figures, not assertions.

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
    path::Path,
    process::{Child, Command},
    sync::Arc,
    time::{Duration, Instant},
};

use fake_llm::FakeLlm;
use futures::{StreamExt, stream};
use human::Human;
use matrix_os::registration::Registration;
use matrix_sdk::ruma::OwnedUserId;
use synapse::{TestHomeserver, free_port};

/// Active twins, each answering in an encrypted room.
const ACTIVE: usize = 50;
/// User queries in flight at once (Synapse sends several while people type in invite dialogs).
const IN_FLIGHT: usize = 16;
/// Idle time after which the bench's service closes a twin.
const IDLE_SECS: u64 = 5;

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

/// Bytes on disk (allocated blocks) under `path`.
fn disk_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.blocks() * 512;
    }
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| disk_bytes(&e.path()))
                .sum::<u64>()
        })
        .unwrap_or(0)
        + meta.blocks() * 512
}

/// Twins with a device (a `device_id` file beside their stores).
fn devices(crypto: &Path) -> usize {
    std::fs::read_dir(crypto)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().join("device_id").exists())
                .count()
        })
        .unwrap_or(0)
}

struct Footprint {
    rss_kib: u64,
    database: u64,
    crypto: u64,
    homes: u64,
}

impl Footprint {
    fn total(&self) -> u64 {
        self.database + self.crypto + self.homes
    }
}

fn footprint(pid: u32, dir: &Path) -> Footprint {
    let database = ["bench.db", "bench.db-wal", "bench.db-shm"]
        .iter()
        .map(|f| disk_bytes(&dir.join(f)))
        .sum();
    Footprint {
        rss_kib: rss_kib(pid),
        database,
        crypto: disk_bytes(&dir.join("crypto")),
        homes: disk_bytes(&dir.join("homes")),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Registers the idle owners `from..to` on the homeserver, as the appservice.
async fn register_owners(http: &reqwest::Client, hs: &str, as_token: &str, from: usize, to: usize) {
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    stream::iter(from..to)
        .for_each_concurrent(IN_FLIGHT, |n| {
            let failures = failures.clone();
            async move {
                let ok = http
                    .post(format!("{hs}/_matrix/client/v3/register"))
                    .bearer_auth(as_token)
                    .json(&serde_json::json!({
                        "type": "m.login.application_service",
                        "username": format!("idle{n}"),
                        "inhibit_login": true,
                    }))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if !ok {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
        .await;
    let failed = failures.load(std::sync::atomic::Ordering::Relaxed);
    if failed > 0 {
        println!("  ({failed} owner registrations failed)");
    }
}

/// Provisions twins `from..to` through the appservice user query; returns the seconds it took
/// until every query was answered and until every device was set up.
async fn provision(
    http: &reqwest::Client,
    appservice: &str,
    hs_token: &str,
    server: &str,
    crypto: &Path,
    from: usize,
    to: usize,
) -> (f64, f64) {
    let started = Instant::now();
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    stream::iter(from..to)
        .for_each_concurrent(IN_FLIGHT, |n| {
            let failures = failures.clone();
            async move {
                let url = format!("{appservice}/_matrix/app/v1/users/@idle{n}_ai:{server}");
                let ok = http
                    .get(url)
                    .bearer_auth(hs_token)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if !ok {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
        .await;
    let answered = started.elapsed().as_secs_f64();
    let failed = failures.load(std::sync::atomic::Ordering::Relaxed);
    if failed > 0 {
        println!("  ({failed} user queries failed)");
    }
    let want = to + ACTIVE - failed;
    let deadline = Instant::now() + Duration::from_secs(3600);
    while devices(crypto) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (answered, started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::var("MATRIX_OS_BENCH_TWINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let first = 1_000.min(total);
    let llm = FakeLlm::start().await;
    let pending = TestHomeserver::reserve();
    let port = free_port();
    let config = pending.appservice_config(&format!("http://127.0.0.1:{port}"));
    let mut registration = Registration::generate(&config);
    // Idle owners are registered by the appservice itself (cheap: no password to hash); the
    // service gives twins only to owners the homeserver knows.
    registration
        .namespaces
        .users
        .push(matrix_os::registration::Namespace {
            exclusive: false,
            regex: format!(
                "@idle[0-9]+:{}$",
                config.homeserver.server_name.replace('.', "\\.")
            ),
        });
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
             [home]\ndir = \"homes\"\n[encryption]\nstore_dir = \"crypto\"\n[twins]\nidle_close_secs = {IDLE_SECS}\n\
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
    let empty = footprint(pid, &dir);

    // 50 active twins, each answering in an encrypted room.
    let mut active = Vec::new();
    for i in 0..ACTIVE {
        let name = format!("user{i}");
        let (_, password, _) = hs.register_user(&name).await;
        let human = Human::login(hs.client_url(), &name, &password).await;
        let twin: OwnedUserId = format!("@{name}_ai:{}", hs.server_name())
            .try_into()
            .unwrap();
        let room = human.create_room(&[&twin], true, true).await;
        human
            .wait_for_join(&room, &twin, Duration::from_secs(120))
            .await;
        human.send_text(&room, "hello").await;
        active.push((human, room, twin));
    }
    for (human, room, twin) in &active {
        human
            .wait_for_messages_from(room, twin, 1, Duration::from_secs(300))
            .await;
    }
    let with_active = footprint(pid, &dir);

    let http = reqwest::Client::new();
    let appservice = format!("http://127.0.0.1:{port}");
    let token = registration.hs_token.expose().to_owned();
    let crypto = dir.join("crypto");
    let server = hs.server_name().to_owned();
    let as_token = registration.as_token.expose().to_owned();
    register_owners(&http, hs.client_url(), &as_token, 0, total).await;
    println!("provisioning through the appservice user query, {IN_FLIGHT} queries in flight:");
    let (answered, ready) = provision(&http, &appservice, &token, &server, &crypto, 0, first).await;
    println!(
        "  {first} twins: queries answered at {:.0} twins/s; every device and key ready at {:.0} twins/s",
        first as f64 / answered,
        first as f64 / ready
    );
    tokio::time::sleep(Duration::from_secs(IDLE_SECS * 2 + 2)).await;
    let at_first = footprint(pid, &dir);
    let mut at_total = None;
    if total > first {
        let (answered, ready) =
            provision(&http, &appservice, &token, &server, &crypto, first, total).await;
        let n = total - first;
        println!(
            "  {n} more: queries answered at {:.0} twins/s; ready at {:.0} twins/s",
            n as f64 / answered,
            n as f64 / ready
        );
        tokio::time::sleep(Duration::from_secs(IDLE_SECS * 2 + 2)).await;
        at_total = Some(footprint(pid, &dir));
    }

    // The active twins still answer.
    let mut answered_again = 0;
    for (human, room, twin) in active.iter().take(5) {
        human.send_text(room, "still there?").await;
        human
            .wait_for_messages_from(room, twin, 2, Duration::from_secs(120))
            .await;
        answered_again += 1;
    }

    println!();
    println!(
        "{:<32} {:>9} {:>10} {:>10} {:>10} {:>10}",
        "state", "RSS MiB", "db MiB", "crypto MiB", "homes MiB", "disk MiB"
    );
    let row = |label: &str, f: &Footprint| {
        println!(
            "{:<32} {:>9.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            label,
            f.rss_kib as f64 / 1024.0,
            mib(f.database),
            mib(f.crypto),
            mib(f.homes),
            mib(f.total())
        );
    };
    row("service started", &empty);
    row(&format!("{ACTIVE} active twins"), &with_active);
    row(&format!("+ {first} provisioned, idle"), &at_first);
    if let Some(at_total) = &at_total {
        row(&format!("+ {total} provisioned, idle"), at_total);
        let idle = (total - first) as f64;
        println!(
            "per idle twin (from {first} to {total}): {:.1} kB disk, {:.1} kB RSS",
            (at_total.total() as f64 - at_first.total() as f64) / idle / 1000.0,
            (at_total.rss_kib as f64 - at_first.rss_kib as f64) * 1024.0 / idle / 1000.0,
        );
    }
    println!(
        "per idle twin (first {first}): {:.1} kB disk",
        (at_first.total() as f64 - with_active.total() as f64) / first as f64 / 1000.0
    );
    println!("{answered_again} of 5 active twins answered again after provisioning");
    drop(service);
}
