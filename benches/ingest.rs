//! Transaction ingest: sends transactions of 1, 10 and 100 events to a running service (SQLite)
//! over HTTP, one at a time as a homeserver does, and prints events/s and ack latency.
//!
//! `cargo bench --bench ingest` (release build). Figures, not assertions.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use matrix_os::{config::Config, registration::Registration, service};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn event(n: usize) -> serde_json::Value {
    serde_json::json!({
        "type": "m.room.message",
        "room_id": format!("!room{}:bench.example", n % 50),
        "sender": format!("@user{}:bench.example", n % 200),
        "event_id": format!("$event{n}"),
        "origin_server_ts": 1_700_000_000_000u64 + n as u64,
        "content": { "msgtype": "m.text", "body": format!("message number {n} with a little text in it") }
    })
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = Config::from_toml_str(&format!(
        r#"
[homeserver]
url = "http://127.0.0.1:9"
server_name = "bench.example"
[appservice]
url = "http://127.0.0.1:{port}"
listen = "127.0.0.1:{port}"
[database]
url = "sqlite://{db}"
[home]
dir = "{homes}"
[llm]
provider = "none"
"#,
        db = dir.path().join("bench.db").display(),
        homes = dir.path().join("homes").display(),
    ))
    .unwrap();
    let registration = Registration::generate(&config);
    let token = registration.hs_token.expose().to_owned();
    let running = service::start(config, registration).await.unwrap();
    let url = format!("http://{}/_matrix/app/v1/transactions", running.addr());
    let http = reqwest::Client::new();

    println!("transaction ingest, SQLite (synchronous=FULL), sequential like a homeserver");
    println!(
        "{:>7} {:>6} {:>12} {:>10} {:>10} {:>10}",
        "events", "txns", "events/s", "p50 ms", "p99 ms", "max ms"
    );
    let mut next_event = 0usize;
    let mut next_txn = 0usize;
    for (size, txns) in [(1usize, 2000usize), (10, 1000), (100, 300)] {
        // Warm-up outside the measurement.
        for _ in 0..20 {
            let events: Vec<_> = (0..size)
                .map(|_| {
                    next_event += 1;
                    event(next_event)
                })
                .collect();
            next_txn += 1;
            http.put(format!("{url}/w{next_txn}"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"events": events}))
                .send()
                .await
                .unwrap();
        }
        let bodies: Vec<(String, String)> = (0..txns)
            .map(|_| {
                let events: Vec<_> = (0..size)
                    .map(|_| {
                        next_event += 1;
                        event(next_event)
                    })
                    .collect();
                next_txn += 1;
                (
                    format!("{url}/b{next_txn}"),
                    serde_json::json!({"events": events}).to_string(),
                )
            })
            .collect();
        let mut latencies = Vec::with_capacity(txns);
        let started = Instant::now();
        for (target, body) in bodies {
            let t0 = Instant::now();
            let response = http
                .put(target)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            latencies.push(t0.elapsed());
        }
        let elapsed = started.elapsed();
        latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:>7} {:>6} {:>12.0} {:>10.2} {:>10.2} {:>10.2}",
            size,
            txns,
            (size * txns) as f64 / elapsed.as_secs_f64(),
            ms(percentile(&latencies, 0.50)),
            ms(percentile(&latencies, 0.99)),
            ms(*latencies.last().unwrap()),
        );
    }
    let backlog = running.store().inbox_backlog().await.unwrap();
    println!("inbox backlog right after the last ack: {backlog} event(s) still being handled");
    running.stop().await;
}
