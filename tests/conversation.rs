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

/// Alice, her twin, and a DM between them that the twin has joined.
async fn alice_dm(
    env: &TestEnv,
    encrypted: bool,
) -> (
    human::Human,
    matrix_sdk::ruma::OwnedUserId,
    matrix_sdk::Room,
) {
    let alice = env.human("alice").await;
    let twin = env.twin_of("alice");
    let room = alice.create_dm(&twin, encrypted).await;
    alice.wait_for_join(&room, &twin, WAIT).await;
    (alice, twin, room)
}

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
    let (alice, twin, room) = alice_dm(&env, true).await;

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
    let (alice, twin, room) = alice_dm(&env, true).await;

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

const STORY: &str = "Once upon a time a small twin lived on a homeserver by the sea. Every \
    morning it read its owner's notes, tidied the calendar and answered the messages that \
    came in overnight. One day a message came from far away, from a twin on another server, \
    asking for a meeting on Friday. The small twin checked the calendar, found a free hour \
    after lunch, and said yes. And they all met happily ever after.";

/// The twin's events in `room` as the client decrypted them, edits included, oldest first.
async fn twin_timeline(
    human: &human::Human,
    room: &matrix_sdk::Room,
    twin: &matrix_sdk::ruma::UserId,
) -> Vec<human::Seen> {
    human
        .timeline(room)
        .await
        .into_iter()
        .filter(|e| e.sender == twin)
        .collect()
}

fn new_body(edit: &human::Seen) -> &str {
    edit.json["content"]["m.new_content"]["body"]
        .as_str()
        .unwrap_or_default()
}

async fn a_streamed_answer_is_a_message_then_edits(provider: LlmProvider) {
    let env = TestEnv::start_with(EnvOptions {
        provider,
        ..Default::default()
    })
    .await;
    // A model that takes 2 s to its first token, then 50 ms between pieces of 7 characters.
    env.llm
        .stream_timing(Duration::from_secs(2), Duration::from_millis(50));
    let (alice, twin, room) = alice_dm(&env, true).await;

    env.llm.push(Step::text(STORY));
    alice.send_text(&room, "tell me a story").await;
    let seen = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert_eq!(seen.len(), 1, "one message, edited");
    assert_eq!(seen[0].body(), STORY);
    assert!(!seen[0].is_live());

    let events = twin_timeline(&alice, &room, &twin).await;
    let (first, edits) = events.split_first().unwrap();
    assert!(
        first.replaces().is_none() && first.is_live(),
        "{:?}",
        first.json
    );
    let opening = first.body();
    assert!(
        STORY.starts_with(opening) && opening.split_whitespace().count() >= 3,
        "the first message holds the first few words: {opening:?}"
    );
    assert!(
        edits.len() >= 3,
        "edited while the answer was written, about once a second: {} edits",
        edits.len()
    );
    let mut before = opening.to_owned();
    for (i, edit) in edits.iter().enumerate() {
        assert_eq!(edit.replaces(), Some(first.event_id.as_str()), "edit {i}");
        let last = i == edits.len() - 1;
        assert_eq!(edit.is_live(), !last, "edit {i}: live until the last");
        assert_eq!(
            edit.json["content"]["m.new_content"]
                .get(human::LIVE_MARKER)
                .is_some(),
            !last
        );
        let body = new_body(edit);
        assert!(
            body.starts_with(before.trim_end()),
            "edit {i} goes on from the one before: {body:?} after {before:?}"
        );
        before = body.to_owned();
    }
    assert_eq!(new_body(edits.last().unwrap()), STORY);

    // Every one of them is encrypted on the wire.
    let raw = env.raw_events(&alice, &room).await;
    let from_twin: Vec<_> = raw
        .iter()
        .filter(|e| e["sender"] == twin.as_str() && e.get("state_key").is_none())
        .collect();
    assert_eq!(from_twin.len(), events.len());
    assert!(
        from_twin.iter().all(|e| e["type"] == "m.room.encrypted"),
        "{from_twin:?}"
    );

    // The first text was visible while the model was still writing: the first message was
    // made after the model's first piece and before its last.
    let streams = env.llm.streams();
    assert_eq!(streams.len(), 1);
    let ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
    };
    let shown = first.json["origin_server_ts"].as_u64().unwrap();
    assert!(
        ms(streams[0].first) <= shown + 5 && shown < ms(streams[0].last),
        "first piece {} ms, first message {shown} ms, last piece {} ms",
        ms(streams[0].first),
        ms(streams[0].last)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_answer_is_a_message_then_edits_openai() {
    a_streamed_answer_is_a_message_then_edits(LlmProvider::Openai).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_answer_is_a_message_then_edits_anthropic() {
    a_streamed_answer_is_a_message_then_edits(LlmProvider::Anthropic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_that_turn_live_messages_off_get_one_message() {
    let env = TestEnv::start().await;
    env.llm
        .stream_timing(Duration::from_millis(300), Duration::from_millis(20));
    let alice = env.human("alice").await;
    let twin = env.twin_of("alice");

    // The room's MSC4357 state turns live messages off.
    let quiet = alice.create_dm(&twin, true).await;
    alice.wait_for_join(&quiet, &twin, WAIT).await;
    quiet
        .send_state_event_raw(
            "org.matrix.msc4357.live_messaging",
            "",
            json!({"enabled": false}),
        )
        .await
        .unwrap();
    env.llm.push(Step::text(STORY));
    alice.send_text(&quiet, "tell me a story").await;
    let seen = alice.wait_for_messages_from(&quiet, &twin, 1, WAIT).await;
    assert_eq!(seen[0].body(), STORY);
    let events = twin_timeline(&alice, &quiet, &twin).await;
    assert_eq!(events.len(), 1, "no edits");
    assert!(!events[0].is_live());

    // The owner's room setting does too.
    let room = alice.create_dm(&twin, false).await;
    alice.wait_for_join(&room, &twin, WAIT).await;
    alice.send_text(&room, "!ai policy room stream off").await;
    let seen = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert!(seen[0].body().contains("one message"), "{}", seen[0].body());
    env.llm.push(Step::text(STORY));
    alice.send_text(&room, "another story").await;
    let seen = alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    assert_eq!(seen[1].body(), STORY);
    assert_eq!(
        twin_timeline(&alice, &room, &twin).await.len(),
        2,
        "no edits"
    );
    // And on again: written in by edits.
    alice
        .send_text(&room, "!ai policy room stream default")
        .await;
    alice.wait_for_messages_from(&room, &twin, 3, WAIT).await;
    env.llm.push(Step::text(STORY));
    alice.send_text(&room, "a third one").await;
    let seen = alice.wait_for_messages_from(&room, &twin, 4, WAIT).await;
    assert_eq!(seen[3].body(), STORY);
    assert!(seen[3].edits >= 1, "streamed again");

    // The owner's own setting turns it off everywhere.
    env.write_home_file("alice", "system/settings.toml", "stream = false\n");
    env.llm.push(Step::text(STORY));
    alice.send_text(&room, "one more").await;
    let seen = alice.wait_for_messages_from(&room, &twin, 5, WAIT).await;
    assert_eq!(seen[4].body(), STORY);
    assert_eq!(seen[4].edits, 0, "not streamed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_stream_leaves_a_readable_message_and_one_answer() {
    let mut env = TestEnv::start().await;
    // About six seconds of writing.
    env.llm
        .stream_timing(Duration::from_millis(300), Duration::from_millis(100));
    let (alice, twin, room) = alice_dm(&env, true).await;

    env.llm.push(Step::text(STORY));
    alice.send_text(&room, "tell me a story").await;
    let deadline = std::time::Instant::now() + WAIT;
    let first = loop {
        alice.sync().await;
        let events = twin_timeline(&alice, &room, &twin).await;
        if let Some(first) = events.first().filter(|e| e.kind() == "m.room.message") {
            break first.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no first message");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    env.stop_service().await;
    // What was written so far stays readable.
    let seen = alice.messages_from(&room, &twin).await;
    assert_eq!(seen.len(), 1);
    assert!(seen[0].is_live() && !seen[0].body().is_empty());
    assert!(STORY.starts_with(seen[0].body().trim_end()));

    // After the restart the turn runs again and writes into the same message.
    let again = "Once upon a time, again: the twin woke up and finished its story.";
    env.llm.push(Step::text(again));
    env.start_service().await;
    let seen = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert_eq!(seen.len(), 1, "answered once: {:?}", seen);
    assert_eq!(seen[0].event_id, first.event_id);
    assert_eq!(seen[0].body(), again);
    assert!(!seen[0].is_live());
    // Nothing else comes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(alice.messages_from(&room, &twin).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_rounds_show_what_the_tools_do_in_the_message() {
    let env = TestEnv::start().await;
    env.llm
        .stream_timing(Duration::from_millis(200), Duration::from_millis(30));
    let (alice, twin, room) = alice_dm(&env, true).await;

    // The tool takes a while (a slow second model call), so the progress is seen.
    env.llm.push(Step::tool_call(
        "write_file",
        json!({"path": "data/plans.md", "content": "Lunch with Bob on Friday\n"}),
    ));
    env.llm.push(Step::delayed(
        Duration::from_millis(1500),
        Step::text("Noted your lunch with Bob in data/plans.md."),
    ));
    alice.send_text(&room, "note my lunch with Bob").await;
    let seen = alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].body(),
        "Noted your lunch with Bob in data/plans.md."
    );
    let events = twin_timeline(&alice, &room, &twin).await;
    assert_eq!(
        events[0].body(),
        "_⏳ writing `data/plans.md`…_",
        "the first message says what the tool does"
    );
    assert!(events[0].is_live());
    assert!(!events.last().unwrap().is_live());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remembered_facts_come_back_in_a_new_session_until_forgotten() {
    let env = TestEnv::start().await;
    let (alice, twin, room) = alice_dm(&env, true).await;
    let memory_file = env.home_of("alice").join("agents/memory/long-term.md");

    env.llm.push(Step::tool_call(
        "remember",
        json!({"fact": "Alice's sister Anna lives in Lyon"}),
    ));
    env.llm.push(Step::text("Noted, I'll remember that."));
    alice
        .send_text(&room, "remember that my sister Anna lives in Lyon")
        .await;
    alice.wait_for_messages_from(&room, &twin, 1, WAIT).await;
    let text = std::fs::read_to_string(&memory_file).unwrap();
    assert!(
        text.contains(": Alice's sister Anna lives in Lyon\n"),
        "{text}"
    );

    // A new session: nothing of the old conversation, but the memory found for the question.
    alice.send_text(&room, "!ai reset").await;
    alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    alice.send_text(&room, "Where does my sister live?").await;
    alice.wait_for_messages_from(&room, &twin, 3, WAIT).await;
    let request = env.llm.requests().last().unwrap().body.to_string();
    assert!(
        request.contains("Anna lives in Lyon") && request.contains("From your long-term memory"),
        "the memory goes with the question: {request}"
    );
    assert!(
        !request.contains("Noted, I'll remember"),
        "a new session: {request}"
    );
    // The same question in other words: what was remembered last still comes with it.
    alice.send_text(&room, "Which city is my sibling in?").await;
    alice.wait_for_messages_from(&room, &twin, 4, WAIT).await;
    let request = env.llm.requests().last().unwrap().body.clone();
    let messages = request["messages"].as_array().unwrap();
    let note = messages[messages.len() - 2].to_string();
    assert!(
        note.contains("Anna lives in Lyon") && note.contains("From your long-term memory"),
        "in this message's note: {note}"
    );

    env.llm.push(Step::tool_call(
        "forget",
        json!({"entry": "sister Anna lives in Lyon"}),
    ));
    env.llm.push(Step::text("Forgotten."));
    alice.send_text(&room, "forget where my sister lives").await;
    alice.wait_for_messages_from(&room, &twin, 5, WAIT).await;
    let text = std::fs::read_to_string(&memory_file).unwrap();
    assert!(!text.contains("Lyon"), "{text}");

    alice.send_text(&room, "!ai reset").await;
    alice.wait_for_messages_from(&room, &twin, 6, WAIT).await;
    alice.send_text(&room, "Where does my sister live?").await;
    alice.wait_for_messages_from(&room, &twin, 7, WAIT).await;
    let request = env.llm.requests().last().unwrap().body.to_string();
    assert!(!request.contains("Lyon"), "forgotten: {request}");
    // Both changes are in the home's history.
    let log = std::process::Command::new("git")
        .args(["log", "--format=%s"])
        .current_dir(env.home_of("alice"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(
        log.contains("remember agents/memory/long-term.md")
            && log.contains("forget agents/memory/long-term.md"),
        "{log}"
    );
}

fn compact_early(config: &mut matrix_os::config::Config) {
    config.rooms.compact_at_tokens = 1000;
    config.rooms.compact_keep_messages = 6;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_conversation_is_summarised_once_and_goes_on_from_the_summary() {
    let env = TestEnv::start_with(EnvOptions {
        configure: Some(compact_early),
        ..Default::default()
    })
    .await;
    let summary = "SUMMARY-5150: Alice told me about her first two turns.";
    env.llm
        .answer_when_system("You summarise a conversation", summary);
    let (alice, twin, room) = alice_dm(&env, true).await;

    let filler = "and some more words about the day, ".repeat(10);
    for i in 1..=6 {
        alice
            .send_text(&room, &format!("TURN-{i}-MARK {filler}"))
            .await;
        alice.wait_for_messages_from(&room, &twin, i, WAIT).await;
    }
    let requests = env.llm.requests();
    let is_summary = |r: &RecordedRequest| r.system_text().starts_with("You summarise");
    let summaries: Vec<usize> = (0..requests.len())
        .filter(|&i| is_summary(&requests[i]))
        .collect();
    assert_eq!(summaries.len(), 1, "one summary for one crossing");
    let at = summaries[0];
    let asked = requests[at].body.to_string();
    assert!(
        asked.contains("TURN-1-MARK") && asked.contains("TURN-2-MARK"),
        "the oldest turns are summarised: {asked}"
    );
    assert!(!asked.contains("TURN-5-MARK"));
    // The turn that crossed, and every one after it: the summary and the recent turns only.
    let after: Vec<&RecordedRequest> = requests[at + 1..].iter().collect();
    assert_eq!(after.len(), 2, "turns 5 and 6");
    for request in &after {
        let body = request.body.to_string();
        assert!(body.contains("SUMMARY-5150"), "{body}");
        assert!(
            !body.contains("TURN-1-MARK") && !body.contains("TURN-2-MARK"),
            "{body}"
        );
        assert!(body.contains("TURN-4-MARK"), "recent turns stay: {body}");
    }
    // Prompt caching goes on from the summary: turn 6 starts with turn 5's request.
    assert_starts_with(after[0], after[1], "after the summary");
    // The summary is in the home too.
    let sessions = env.home_of("alice").join("system/sessions");
    let file = std::fs::read_dir(&sessions)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".summary.md"))
        .expect("a summary file");
    let text = std::fs::read_to_string(file.path()).unwrap();
    assert!(text.contains("SUMMARY-5150"), "{text}");

    // `!ai reset` starts afresh: no summary.
    alice.send_text(&room, "!ai reset").await;
    alice.wait_for_messages_from(&room, &twin, 7, WAIT).await;
    alice.send_text(&room, "hello again").await;
    alice.wait_for_messages_from(&room, &twin, 8, WAIT).await;
    let last = env.llm.requests().last().unwrap().body.to_string();
    assert!(
        !last.contains("SUMMARY-5150") && !last.contains("TURN-6-MARK"),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_too_long_for_one_message_goes_on_in_a_new_one() {
    let env = TestEnv::start().await;
    env.llm
        .stream_timing(Duration::from_millis(100), Duration::from_millis(2));
    let (alice, twin, room) = alice_dm(&env, true).await;

    let paragraphs: Vec<String> = (1..=30)
        .map(|i| format!("Paragraph {i}: {}", "all work and no play. ".repeat(15)))
        .collect();
    let answer = paragraphs.join("\n\n");
    assert!(answer.len() > 9_000);
    env.llm.push(Step::text(answer.clone()));
    alice.send_text(&room, "write me a long text").await;
    let seen = alice.wait_for_messages_from(&room, &twin, 2, WAIT).await;
    assert_eq!(seen.len(), 2, "two messages");
    assert!(seen.iter().all(|m| !m.is_live()));
    assert!(seen.iter().all(|m| m.body().len() <= 6_000));
    assert!(seen[0].body().starts_with("Paragraph 1:"));
    assert!(
        seen[1].body().starts_with("Paragraph "),
        "cut at a paragraph"
    );
    // (Each message is trimmed.)
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let joined = format!("{} {}", seen[0].body(), seen[1].body());
    assert_eq!(
        words(&joined),
        words(&answer),
        "nothing lost, nothing repeated"
    );
}
