//! How much of each model request a provider's prompt cache can serve: a 20-turn encrypted
//! DM conversation (every fifth turn with a tool call) against a real Synapse, in both wire
//! formats, with the fake model reporting as cached the part of each request that starts an
//! earlier one (what OpenAI's automatic caching and Anthropic's breakpoints match). Prints the
//! share of input tokens read from the cache, overall and per turn, and the turns where the
//! prefix broke (the history window moving on).
//!
//! `cargo bench --bench cache`. Figures, not assertions.

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

use std::time::Duration;

use env::{EnvOptions, TestEnv};
use fake_llm::Step;
use matrix_os::config::LlmProvider;
use serde_json::json;

const TURNS: usize = 20;
const WAIT: Duration = Duration::from_secs(60);

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

/// A direction of `matrixos_model_tokens_total`.
fn tokens(scrape: &prometheus_parse::Scrape, direction: &str) -> f64 {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "matrixos_model_tokens_total"
                && s.labels.get("direction") == Some(direction)
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) => v,
            _ => 0.0,
        })
        .unwrap_or(0.0)
}

async fn run(provider: LlmProvider) {
    let env = TestEnv::start_with(EnvOptions {
        provider,
        ..Default::default()
    })
    .await;
    let alice = env.human("alice").await;
    let twin = env.twin_of("alice");
    let room = alice.create_dm(&twin, true).await;
    alice.wait_for_join(&room, &twin, WAIT).await;

    let mut shares = Vec::new();
    let mut previous = env.metrics().await;
    for turn in 0..TURNS {
        if turn % 5 == 4 {
            env.llm.push(Step::tool_call(
                "write_file",
                json!({"path": format!("data/note-{turn}.md"), "content": "a note\n"}),
            ));
            env.llm.push(Step::text(format!("Saved note {turn}.")));
        }
        alice
            .send_text(
                &room,
                &format!("Message {turn}: tell me something about the weather in spring."),
            )
            .await;
        alice
            .wait_for_messages_from(&room, &twin, turn + 1, WAIT)
            .await;
        let now = env.metrics().await;
        let input = tokens(&now, "input") - tokens(&previous, "input");
        let read = tokens(&now, "cache_read") - tokens(&previous, "cache_read");
        shares.push(read / input.max(1.0));
        previous = now;
    }
    let input = tokens(&previous, "input");
    let read = tokens(&previous, "cache_read");
    let written = tokens(&previous, "cache_write");
    let broke: Vec<usize> = shares
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, share)| **share < 0.5)
        .map(|(turn, _)| turn + 1)
        .collect();
    let later: Vec<f64> = shares.iter().skip(1).copied().collect();
    let min = later.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "{provider:?}: {TURNS} turns, {} model calls, {input:.0} input tokens, {read:.0} read \
         from the cache ({:.1} %), {written:.0} written to it",
        env.llm.requests().len(),
        100.0 * read / input.max(1.0),
    );
    println!(
        "  per turn after the first: min {:.1} %, median {:.1} %; prefix broken at turns {broke:?}",
        100.0 * min,
        100.0 * median(&later),
    );
    println!(
        "  per turn: {}",
        shares
            .iter()
            .map(|s| format!("{:.0}", 100.0 * s))
            .collect::<Vec<_>>()
            .join(" ")
    );
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}
