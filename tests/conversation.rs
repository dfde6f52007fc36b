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

fn small_daily_budget(config: &mut matrix_os::config::Config) {
    // Less than one request of the fake model (it counts a quarter of the body's bytes).
    config.llm.daily_token_budget = Some(300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_up_budget_is_told_once_and_the_model_is_not_called_until_raised() {
    let env = TestEnv::start_with(EnvOptions {
        configure: Some(small_daily_budget),
        ..Default::default()
    })
    .await;
    let alice = env.human("alice").await;
    let twin = env.twin_of("alice");
    let room = alice.create_dm(&twin, true).await;
    alice.wait_for_join(&room, &twin, WAIT).await;

    // Nothing used yet: the first turn calls the model, and uses more than the budget.
    env.llm.push(Step::text("Hello Alice!"));
    alice.send_text(&room, "hi").await;
    alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert_eq!(env.llm.requests().len(), 1);

    // Over the budget: told once, in the owner's DM, and the model is not asked (the step
    // queued here stays queued until the budget is raised).
    env.llm.push(Step::text("Yes, I am back."));
    alice.send_text(&room, "what's on today?").await;
    let seen = alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    let notice = seen[1].body();
    assert!(
        notice.contains("daily token budget") && notice.contains("!ai budget daily"),
        "{notice}"
    );
    // A second message is not answered and not told again; the command after it is the
    // next thing the twin says.
    alice.send_text(&room, "hello?").await;
    alice.send_text(&room, "!ai usage").await;
    let seen = alice.wait_for_messages_from(&room, &twin, 3, WAIT).await;
    let usage = seen[2].body();
    assert!(
        usage.contains("Tokens used") && usage.contains("1 model call(s)"),
        "{usage}"
    );
    assert!(usage.contains("of a budget of 300"), "{usage}");
    assert!(usage.contains("used up"), "{usage}");
    assert_eq!(env.llm.requests().len(), 1, "the model was not asked again");

    // The owner raises it: the twin answers again (with the queued step).
    alice.send_text(&room, "!ai budget daily off").await;
    let seen = alice.wait_for_messages_from(&room, &twin, 4, WAIT).await;
    assert!(seen[3].body().contains("no limit"), "{}", seen[3].body());
    alice.send_text(&room, "are you back?").await;
    let seen = alice.wait_for_messages_from(&room, &twin, 5, WAIT).await;
    assert_eq!(seen[4].body(), "Yes, I am back.");
    assert_eq!(env.llm.requests().len(), 2);
    let settings =
        std::fs::read_to_string(env.home_of("alice").join("system/settings.toml")).unwrap();
    assert!(settings.contains("[budget]"), "{settings}");
    assert_eq!(
        seen.iter()
            .filter(|m| m.body().contains("🪫 I have used"))
            .count(),
        1,
        "told once"
    );
}
