//! Conversations that stay cheap, end to end (real Synapse, the service in-process, a real
//! matrix-sdk client, the fake model in both wire formats): every request of a room's
//! conversation starts with the whole previous request, so providers can serve it from their
//! prompt cache, and the cache counters they report are read.

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

use std::time::Duration;

use env::{EnvOptions, TestEnv};
use fake_llm::{RecordedRequest, Step};
use matrix_os::config::LlmProvider;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// A request body without Anthropic's `cache_control` markers (they say where the cache
/// ends; they are not part of the prompt the cache matches).
fn without_markers(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "cache_control")
                .map(|(k, v)| (k.clone(), without_markers(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_markers).collect()),
        other => other.clone(),
    }
}

/// Asserts that `next` starts with the whole of `previous`: the same tools and system
/// prompt, and `previous`'s messages as its first messages, byte for byte (as JSON text).
fn assert_starts_with(previous: &RecordedRequest, next: &RecordedRequest, what: &str) {
    let (a, b) = (without_markers(&previous.body), without_markers(&next.body));
    assert_eq!(
        a["tools"].to_string(),
        b["tools"].to_string(),
        "{what}: tools"
    );
    assert_eq!(
        a["system"].to_string(),
        b["system"].to_string(),
        "{what}: system prompt"
    );
    let (a, b) = (
        a["messages"].as_array().unwrap(),
        b["messages"].as_array().unwrap(),
    );
    assert!(a.len() < b.len(), "{what}: the conversation grew");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.to_string(), y.to_string(), "{what}: message {i}");
    }
}

async fn every_request_starts_with_the_previous_one(provider: LlmProvider) {
    let env = TestEnv::start_with(EnvOptions {
        provider,
        ..Default::default()
    })
    .await;
    let alice = env.human("alice").await;
    let twin = env.twin_of("alice");
    let room = alice.create_dm(&twin, true).await;
    alice.wait_for_join(&room, &twin, WAIT).await;

    // A turn with a tool call, then plain turns: the history holds every kind of message.
    env.llm.push(Step::tool_call(
        "write_file",
        json!({"path": "data/plans.md", "content": "Lunch with Bob on Friday\n"}),
    ));
    env.llm.push(Step::text("Noted in data/plans.md."));
    alice.send_text(&room, "note my lunch with Bob").await;
    alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    // Another minute may begin between the turns: the time goes with the message, after the
    // history, so that does not matter.
    for (n, text) in ["what are my plans?", "and after lunch?"]
        .iter()
        .enumerate()
    {
        alice.send_text(&room, text).await;
        alice
            .wait_for_messages_from(&room, &twin, n + 2, WAIT)
            .await;
    }

    let requests = env.llm.requests();
    assert_eq!(requests.len(), 4, "two steps, then one per turn");
    for i in 1..requests.len() {
        assert_starts_with(&requests[i - 1], &requests[i], &format!("request {i}"));
    }
    let system = requests[0].system_text();
    assert!(
        !system.contains("date and time"),
        "the time changes: it is not in the system prompt: {system}"
    );
    if provider == LlmProvider::Anthropic {
        // Breakpoints after the system prompt and at the end of the conversation.
        for request in &requests {
            assert_eq!(
                request.body["system"][0]["cache_control"],
                json!({"type": "ephemeral"})
            );
            let last = request.body["messages"].as_array().unwrap().last().unwrap();
            let block = last["content"].as_array().unwrap().last().unwrap();
            assert_eq!(block["cache_control"], json!({"type": "ephemeral"}));
        }
    }
    // The fake reports the shared beginning as read from its cache; the service reads it.
    let scrape = env.metrics().await;
    let cache_read = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "matrixos_model_tokens_total"
                && s.labels.get("direction") == Some("cache_read")
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) => v,
            _ => 0.0,
        })
        .unwrap_or(0.0);
    let input = env.metric("matrixos_model_tokens_total").await;
    assert!(
        cache_read > 0.0 && cache_read < input,
        "cache reads counted: {cache_read} of {input}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_starts_with_the_previous_one_openai() {
    every_request_starts_with_the_previous_one(LlmProvider::Openai).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_starts_with_the_previous_one_anthropic() {
    every_request_starts_with_the_previous_one(LlmProvider::Anthropic).await;
}
