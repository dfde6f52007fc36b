//! Time from Alice's request ("find 30 minutes with Bob") to both calendars holding the
//! meeting, across two federating homeservers, each with its own matrix-os, with auto-accept and
//! a zero-latency fake model. Prints figures per round and where the time goes.
//!
//! `cargo bench --bench meeting`. Figures, not assertions.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    dead_code,
    unreachable_pub
)]
#![recursion_limit = "256"]

#[path = "../tests/support/env.rs"]
mod env;
#[path = "../tests/support/fake_llm.rs"]
mod fake_llm;
#[path = "../tests/support/fault_proxy.rs"]
mod fault_proxy;
#[path = "../tests/support/human.rs"]
mod human;
#[path = "../tests/support/postgres.rs"]
mod postgres;
#[path = "../tests/support/proxy.rs"]
mod proxy;
#[path = "../tests/support/synapse.rs"]
mod synapse;

use std::time::{Duration, Instant};

use chrono::{Duration as Days, Utc};
use env::{EnvOptions, TestEnv};
use fake_llm::Step;
use serde_json::json;

const ROUNDS: i64 = 8;

fn count_events(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches("BEGIN:VEVENT")
        .count()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let (hs1, hs2) = TestEnv::start_pair(EnvOptions::default(), EnvOptions::default()).await;
    let alice = hs1.human("alice").await;
    let bob = hs2.human("bob").await;
    let alice_ai = hs1.twin_of("alice");
    let bob_ai = hs2.twin_of("bob");
    let dm = alice.create_dm(&alice_ai, true).await;
    alice
        .wait_for_join(&dm, &alice_ai, Duration::from_secs(60))
        .await;
    let bob_dm = bob.create_dm(&bob_ai, true).await;
    bob.wait_for_join(&bob_dm, &bob_ai, Duration::from_secs(60))
        .await;
    alice.sync().await;
    let every_day = "time_zone = \"UTC\"\nworking_hours = \"00:00-23:45\"\n\
        days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]\n";
    hs1.write_home_file("alice", "system/meetings.toml", every_day);
    hs2.write_home_file(
        "bob",
        "system/meetings.toml",
        &format!("{every_day}auto_accept = [\"{}\"]\n", alice.user_id),
    );
    hs2.write_home_file(
        "bob",
        "system/access.toml",
        &format!("federation = [\"{}\"]\n", hs1.server_name()),
    );
    let alice_cal = hs1.home_of("alice").join("data/calendar.ics");
    let bob_cal = hs2.home_of("bob").join("data/calendar.ics");
    println!(
        "round  turn_done_ms  alice_calendar_ms  bob_calendar_ms  alice_notice_ms  (from Alice's message)"
    );
    let mut totals = Vec::new();
    let mut firsts = Vec::new();
    let mut turns = Vec::new();
    for round in 0..ROUNDS {
        let start = (Utc::now() + Days::days(round + 1))
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        hs1.llm.push(Step::tool_call(
            "propose_meeting",
            json!({"with": bob.user_id.as_str(), "title": format!("Round {round}"),
                   "duration_minutes": 30, "window_start": start.to_rfc3339(),
                   "window_end": (start + Days::days(1)).to_rfc3339(), "time_zone": "UTC"}),
        ));
        hs1.llm.push(Step::text("On it."));
        let want = round as usize + 1;
        let posts = || {
            hs1.llm
                .requests()
                .iter()
                .filter(|r| r.method == "POST")
                .count()
        };
        // Per round Alice's model gets three calls: the turn's two, then wording her notice.
        let before = posts();
        let t0 = Instant::now();
        alice.send_text(&dm, "find 30 minutes with Bob").await;
        let (mut turn, mut a, mut b, mut told) = (None, None, None, None);
        // The next round's script must not be taken for this round's notice: wait for it too.
        while a.is_none() || b.is_none() || told.is_none() {
            let calls = posts() - before;
            if turn.is_none() && calls >= 2 {
                turn = Some(t0.elapsed());
            }
            if a.is_none() && count_events(&alice_cal) >= want {
                a = Some(t0.elapsed());
            }
            if b.is_none() && count_events(&bob_cal) >= want {
                b = Some(t0.elapsed());
            }
            if told.is_none() && calls >= 3 {
                told = Some(t0.elapsed());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "round {round} did not finish"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let ms = |d: Option<Duration>| d.unwrap().as_millis();
        println!(
            "{round:>5}  {:>12}  {:>17}  {:>15}  {:>15}",
            ms(turn),
            ms(a),
            ms(b),
            ms(told)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        turns.push(turn.unwrap());
        firsts.push(a.min(b));
        totals.push(a.max(b));
    }
    totals.sort();
    firsts.sort();
    turns.sort();
    let median = |v: &Vec<Duration>| v[v.len() / 2].as_millis();
    println!(
        "request -> both calendars written: median {} ms, max {} ms over {ROUNDS} rounds",
        median(&totals),
        totals.last().unwrap().as_millis(),
    );
    println!(
        "where it goes (medians): Alice's message reaches her twin and its turn ends (the \
         model's second call) {} ms; hello + request to Bob's twin, its accept back, Alice's \
         calendar {} ms; the confirm's federation hop to Bob's calendar the rest",
        median(&turns),
        median(&firsts),
    );
}
