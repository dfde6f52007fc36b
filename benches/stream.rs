//! Time to first visible text with streaming: an encrypted DM against a real Synapse, the
//! fake model taking 2 s to its first token and 50 ms between pieces (7 characters each), in
//! both wire formats. For each turn: the model's time to first token and to its last piece,
//! and when the twin's first message (the first words of the answer) reached the homeserver,
//! all from the owner's message (homeserver and fake clocks are this machine's). Prints the
//! medians and the worst turn; the target is the first text within 300 ms of the first token.
//!
//! `cargo bench --bench stream`. Figures, not assertions.

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

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use env::{EnvOptions, TestEnv};
use fake_llm::Step;
use matrix_os::config::LlmProvider;

const TURNS: usize = 10;
const WAIT: Duration = Duration::from_secs(60);
const ANSWER: &str = "Here is what I found for you today: three meetings, two of them before \
    lunch, and a reminder to call the plumber about the kitchen tap. The afternoon is free \
    after four, so that would be a good time for the walk you wanted.";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    for provider in [LlmProvider::Openai, LlmProvider::Anthropic] {
        runtime.block_on(run(provider));
    }
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn median(values: &mut [i64]) -> i64 {
    values.sort_unstable();
    values[values.len() / 2]
}

async fn run(provider: LlmProvider) {
    let env = TestEnv::start_with(EnvOptions {
        provider,
        ..Default::default()
    })
    .await;
    env.llm
        .stream_timing(Duration::from_secs(2), Duration::from_millis(50));
    let alice = env.human("alice").await;
    let twin = env.twin_of("alice");
    let room = alice.create_dm(&twin, true).await;
    alice.wait_for_join(&room, &twin, WAIT).await;

    let (mut first_token, mut first_text, mut last_piece, mut gap) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for turn in 0..TURNS {
        env.llm.push(Step::text(ANSWER));
        let sent = alice
            .send_text(&room, &format!("what's on today? ({turn})"))
            .await;
        alice
            .wait_for_messages_from(&room, &twin, turn + 1, WAIT)
            .await;
        let timeline = alice.timeline(&room).await;
        let asked = timeline
            .iter()
            .find(|e| e.event_id == sent)
            .and_then(|e| e.json["origin_server_ts"].as_i64())
            .unwrap();
        let shown = timeline
            .iter()
            .filter(|e| e.sender == twin && e.replaces().is_none())
            .nth(turn)
            .and_then(|e| e.json["origin_server_ts"].as_i64())
            .unwrap();
        let stream = env.llm.streams()[turn];
        first_token.push(ms(stream.first) - asked);
        first_text.push(shown - asked);
        last_piece.push(ms(stream.last) - asked);
        gap.push(shown - ms(stream.first));
    }
    let worst = *gap.iter().max().unwrap();
    println!(
        "{provider:?}, {TURNS} turns: from the owner's message, the model's first token {} ms, \
         the twin's first text {} ms, the model's last piece {} ms (medians); first text after \
         the first token: median {} ms, worst {worst} ms (target: within 300 ms)",
        median(&mut first_token),
        median(&mut first_text),
        median(&mut last_piece),
        median(&mut gap),
    );
}
