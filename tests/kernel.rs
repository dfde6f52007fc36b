//! The real kernel over HTTP against the fake language model, for both wire protocols.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/fake_llm.rs"]
mod fake_llm;

use std::{sync::Arc, time::Duration};

use fake_llm::{FakeLlm, Step};
use matrix_os::{
    config::{LlmConfig, LlmProvider},
    home::Home,
    kernel::{Audience, Kernel, KernelError, Message, Turn, TurnOutcome, UNCONFIGURED_REPLY},
};
use serde_json::{Value, json};

const ROOM: &str = "!abc:example.org";
const KEY_ENV: &str = "MATRIX_OS_TEST_LLM_KEY";
const KEY: &str = "test-key-123";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Wire {
    OpenAi,
    Anthropic,
}

impl Wire {
    fn path(self) -> &'static str {
        match self {
            Wire::OpenAi => "/v1/chat/completions",
            Wire::Anthropic => "/v1/messages",
        }
    }
}

fn config(wire: Wire, fake: &FakeLlm) -> LlmConfig {
    let (provider, base) = match wire {
        Wire::OpenAi => (LlmProvider::Openai, fake.openai_base()),
        Wire::Anthropic => (LlmProvider::Anthropic, fake.anthropic_base()),
    };
    LlmConfig {
        provider,
        base_url: Some(base.parse().unwrap()),
        model: "fake-model".into(),
        api_key_env: KEY_ENV.into(),
        timeout_secs: 5,
        max_retries: 2,
        max_tool_steps: 5,
        max_tokens: 512,
        max_prompt_chars: 120_000,
        daily_token_budget: None,
        monthly_token_budget: None,
        stream: true,
        vision: true,
    }
}

fn kernel(config: &LlmConfig) -> Kernel {
    let env = |name: &str| (name == KEY_ENV).then(|| KEY.to_owned());
    Kernel::from_config_with_backoff(config, env, Duration::from_millis(5)).unwrap()
}

struct TestHome {
    _dir: tempfile::TempDir,
    home: Arc<Home>,
}

fn home() -> TestHome {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::open_or_create(&dir.path().join("alice"), None, "@alice:example.org").unwrap();
    TestHome {
        home: Arc::new(home),
        _dir: dir,
    }
}

fn turn(input: &str) -> Turn {
    Turn {
        room_id: ROOM.into(),
        history: Vec::new(),
        input: input.into(),
        images: Vec::new(),
        audience: Audience::Owner,
        allowed_tools: None,
        model: None,
        context: None,
        exposed: false,
        approvals: Default::default(),
        peers_in_context: None,
        live: None,
    }
}

async fn run(wire: Wire, fake: &FakeLlm, home: &TestHome, input: &str) -> TurnOutcome {
    kernel(&config(wire, fake))
        .run_turn(Arc::clone(&home.home), turn(input))
        .await
        .unwrap()
}

fn head_message(home: &TestHome) -> String {
    let repo = git2::Repository::open(home.home.root()).unwrap();
    let commit = repo.head().unwrap().peel_to_commit().unwrap();
    commit.message().unwrap().trim().to_owned()
}

/// The tool results the model was sent in a recorded request, as `(content, is_error)`.
fn tool_results_sent(wire: Wire, body: &Value) -> Vec<(String, bool)> {
    let messages = body["messages"].as_array().unwrap();
    match wire {
        Wire::OpenAi => messages
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| (m["content"].as_str().unwrap().to_owned(), false))
            .collect(),
        Wire::Anthropic => messages
            .iter()
            .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
            .filter(|b| b["type"] == "tool_result")
            .map(|b| {
                (
                    b["content"].as_str().unwrap().to_owned(),
                    b["is_error"] == json!(true),
                )
            })
            .collect(),
    }
}

/// Runs a scenario once per wire protocol.
macro_rules! both_wires {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn openai() {
                super::$name(super::Wire::OpenAi).await;
            }
            #[tokio::test]
            async fn anthropic() {
                super::$name(super::Wire::Anthropic).await;
            }
        }
    )*};
}

both_wires!(
    plain_text_reply,
    write_file_creates_the_file_and_a_commit,
    escaping_path_is_refused_and_the_loop_goes_on,
    server_error_is_retried,
    provider_that_keeps_failing_gives_a_clear_error,
    unknown_model_fails_at_once_and_names_the_model,
    tool_step_limit_stops_an_endless_model,
    unconfigured_kernel_explains_how_to_configure,
    history_is_sent_on_the_next_turn,
    check_endpoint_accepts_a_good_key_and_explains_a_bad_one,
    unreadable_answer_is_a_clear_error,
);

// After `both_wires!`, which it uses.
/// Turns of someone other than the owner, room tool restrictions and a twin's own model.
#[path = "kernel/audience.rs"]
mod audience;

async fn plain_text_reply(wire: Wire) {
    let fake = FakeLlm::start().await;
    let home = home();
    fake.push(Step::text("Hello Alice!"));
    let outcome = run(wire, &fake, &home, "Hi there").await;
    assert_eq!(outcome.reply, "Hello Alice!");
    // The note from matrix-os (the time) first, then the message and the answer: all kept.
    let Message::Note { content: note } = &outcome.messages[0] else {
        panic!("{:#?}", outcome.messages)
    };
    assert!(note.contains("current date and time"), "{note}");
    assert_eq!(
        outcome.messages[1..],
        [
            Message::user("Hi there"),
            Message::assistant("Hello Alice!")
        ]
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.path, wire.path());
    assert_eq!(request.body["model"], "fake-model");
    let system = match wire {
        Wire::OpenAi => {
            assert_eq!(
                request.header("authorization"),
                Some(format!("Bearer {KEY}").as_str())
            );
            assert_eq!(request.body["messages"][0]["role"], "system");
            request.body["messages"][0]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        }
        Wire::Anthropic => {
            assert_eq!(request.header("x-api-key"), Some(KEY));
            assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
            request.system_text()
        }
    };
    assert!(
        !system.contains("date and time"),
        "what changes every turn stays out of the system prompt: {system}"
    );
    assert!(system.contains(&format!("Room: {ROOM}")), "{system}");
    assert!(
        system.contains("load_skill"),
        "the skills table of contents is missing: {system}"
    );
    let tools: Vec<&str> = request.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t["name"]
                .as_str()
                .or(t["function"]["name"].as_str())
                .unwrap()
        })
        .collect();
    assert!(
        tools.contains(&"write_file") && tools.contains(&"remember"),
        "{tools:?}"
    );
}

async fn write_file_creates_the_file_and_a_commit(wire: Wire) {
    let fake = FakeLlm::start().await;
    let home = home();
    fake.push(Step::tool_call(
        "write_file",
        json!({"path": "data/notes.md", "content": "Meeting at 3pm\n"}),
    ));
    fake.push(Step::text("Saved it to data/notes.md."));
    let outcome = run(wire, &fake, &home, "Note: meeting at 3pm").await;

    assert_eq!(outcome.reply, "Saved it to data/notes.md.");
    assert_eq!(
        home.home.read_to_string("data/notes.md").unwrap(),
        "Meeting at 3pm\n"
    );
    assert_eq!(
        head_message(&home),
        format!("write_file data/notes.md (room {ROOM})")
    );
    assert_eq!(outcome.messages.len(), 5, "{:#?}", outcome.messages);
    assert!(
        matches!(&outcome.messages[2], Message::Assistant { tool_calls, .. } if tool_calls[0].name == "write_file")
    );
    assert!(matches!(
        &outcome.messages[3],
        Message::Tool {
            is_error: false,
            ..
        }
    ));

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let results = tool_results_sent(wire, &requests[1].body);
    assert_eq!(results.len(), 1);
    assert!(
        results[0].0.starts_with("Wrote 15 bytes to data/notes.md."),
        "{results:?}"
    );
}

async fn escaping_path_is_refused_and_the_loop_goes_on(wire: Wire) {
    let fake = FakeLlm::start().await;
    let home = home();
    fake.push(Step::tool_call(
        "read_file",
        json!({"path": "../etc/passwd"}),
    ));
    fake.push(Step::text("I can't read files outside my home."));
    let outcome = run(wire, &fake, &home, "Show me /etc/passwd").await;

    assert_eq!(outcome.reply, "I can't read files outside my home.");
    let Message::Tool {
        content, is_error, ..
    } = &outcome.messages[3]
    else {
        panic!("{:#?}", outcome.messages)
    };
    assert!(*is_error && content.contains("not allowed"), "{content}");
    let results = tool_results_sent(wire, &fake.requests()[1].body);
    assert!(!results[0].0.contains("root:"), "{results:?}");
    if wire == Wire::Anthropic {
        assert!(results[0].1, "is_error must reach Anthropic");
    }
}

async fn server_error_is_retried(wire: Wire) {
    let fake = FakeLlm::start().await;
    let home = home();
    fake.push(Step::error(500, "internal error"));
    fake.push(Step::text("Back again."));
    let outcome = run(wire, &fake, &home, "Hello?").await;
    assert_eq!(outcome.reply, "Back again.");
    assert_eq!(fake.requests().len(), 2);
}

async fn provider_that_keeps_failing_gives_a_clear_error(wire: Wire) {
    let fake = FakeLlm::start().await;
    let home = home();
    let mut config = config(wire, &fake);
    config.max_retries = 1;
    for _ in 0..3 {
        fake.push(Step::error(500, "internal error"));
    }
    let error = kernel(&config)
        .run_turn(Arc::clone(&home.home), turn("Hello?"))
        .await
        .unwrap_err();
    assert_eq!(
        error.user_message(),
        "⚠️ I couldn't reach the language model (HTTP 500 after 2 attempts). Please try again in a moment."
    );
    assert!(!error.to_string().contains(KEY));
    assert_eq!(fake.requests().len(), 2);
}

async fn unknown_model_fails_at_once_and_names_the_model(wire: Wire) {
    let fake = FakeLlm::start().await;
    let home = home();
    fake.push(Step::error(404, "model: fake-model not found"));
    let error = kernel(&config(wire, &fake))
        .run_turn(Arc::clone(&home.home), turn("Hi"))
        .await
        .unwrap_err();
    assert_eq!(fake.requests().len(), 1, "a 404 must not be retried");
    let message = error.user_message();
    assert!(
        message.contains("`fake-model`") && message.contains("llm.model"),
        "{message}"
    );
    assert!(error.to_string().contains("may be wrong"), "{error}");
}

async fn tool_step_limit_stops_an_endless_model(wire: Wire) {
    let fake = FakeLlm::start().await;
    let home = home();
    let mut config = config(wire, &fake);
    config.max_tool_steps = 3;
    for _ in 0..10 {
        fake.push(Step::tool_call("list_files", json!({})));
    }
    let outcome = kernel(&config)
        .run_turn(Arc::clone(&home.home), turn("Loop forever"))
        .await
        .unwrap();
    assert!(
        outcome.reply.contains("stopped after 3 steps"),
        "{}",
        outcome.reply
    );
    assert_eq!(fake.requests().len(), 3);
    // note + user + 3 × (assistant + tool): every call answered, so the session can go on.
    assert_eq!(outcome.messages.len(), 8);
    assert!(matches!(
        outcome.messages.last(),
        Some(Message::Tool { .. })
    ));
}

async fn unconfigured_kernel_explains_how_to_configure(wire: Wire) {
    let fake = FakeLlm::start().await;
    let home = home();
    let mut config = config(wire, &fake);
    // A key is needed: the base URL is not loopback for Anthropic, and not OpenAI's loopback
    // exemption once it points elsewhere.
    config.base_url = Some("https://llm.invalid/v1".parse().unwrap());
    let kernel = Kernel::from_config_with_env(&config, |_| None).unwrap();
    assert!(!kernel.is_configured());
    assert!(
        kernel.describe().starts_with("no model configured"),
        "{}",
        kernel.describe()
    );
    let outcome = kernel
        .run_turn(Arc::clone(&home.home), turn("Hi"))
        .await
        .unwrap();
    assert_eq!(outcome.reply, UNCONFIGURED_REPLY);
    for hint in [
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "MATRIX_OS__LLM__",
    ] {
        assert!(outcome.reply.contains(hint), "{hint}");
    }
    let none = LlmConfig {
        provider: LlmProvider::None,
        ..config
    };
    let kernel = Kernel::from_config_with_env(&none, |_| Some(KEY.into())).unwrap();
    assert_eq!(
        kernel
            .run_turn(Arc::clone(&home.home), turn("Hi"))
            .await
            .unwrap()
            .reply,
        UNCONFIGURED_REPLY
    );
    assert!(matches!(
        kernel.check_endpoint().await,
        Err(KernelError::NotConfigured(_))
    ));
    assert!(fake.requests().is_empty());
}

async fn history_is_sent_on_the_next_turn(wire: Wire) {
    let fake = FakeLlm::start().await;
    let home = home();
    fake.push(Step::tool_call(
        "remember",
        json!({"fact": "Likes green tea"}),
    ));
    fake.push(Step::text("Noted."));
    let kernel = kernel(&config(wire, &fake));
    let first = kernel
        .run_turn(Arc::clone(&home.home), turn("I like green tea"))
        .await
        .unwrap();
    assert_eq!(
        head_message(&home),
        format!("remember agents/memory/long-term.md (room {ROOM})")
    );

    let next = Turn {
        history: first.messages.clone(),
        ..turn("What do I like?")
    };
    let second = kernel.run_turn(Arc::clone(&home.home), next).await.unwrap();
    // The queue is empty: the fake echoes the newest user text.
    assert_eq!(second.reply, "echo: What do I like?");
    let body = &fake.requests()[2].body;
    let dump = body["messages"].to_string();
    assert!(
        dump.contains("I like green tea") && dump.contains("Noted."),
        "{dump}"
    );
    // The memory found for the new message goes with it, in the note before it.
    let messages = body["messages"].as_array().unwrap();
    // (Anthropic merges the note into the user message.)
    let note = serde_json::to_string(&messages[messages.len() - 2..]).unwrap();
    assert!(
        note.contains("From your long-term memory") && note.contains("Likes green tea"),
        "the remembered fact is in the note of the next turn: {note}"
    );
}

async fn check_endpoint_accepts_a_good_key_and_explains_a_bad_one(wire: Wire) {
    let fake = FakeLlm::start().await;
    fake.require_key(KEY);
    let config = config(wire, &fake);
    let ok = kernel(&config).check_endpoint().await.unwrap();
    assert!(ok.contains("answers"), "{ok}");
    let last = fake.requests().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.path.as_str()),
        ("GET", "/v1/models")
    );

    let wrong = Kernel::from_config_with_env(&config, |_| Some("wrong-key".into())).unwrap();
    let error = wrong.check_endpoint().await.unwrap_err().to_string();
    assert!(error.contains("401") && error.contains(KEY_ENV), "{error}");
    assert!(!error.contains("wrong-key"), "{error}");

    let mut unreachable = config.clone();
    unreachable.base_url = Some("http://127.0.0.1:9/v1".parse().unwrap());
    let error = kernel(&unreachable)
        .check_endpoint()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("could not connect") && error.contains("llm.base_url"),
        "{error}"
    );
}

async fn unreadable_answer_is_a_clear_error(wire: Wire) {
    let fake = FakeLlm::start().await;
    let home = home();
    fake.push(Step::Respond {
        status: 200,
        headers: Vec::new(),
        body: "<html>not json</html>".into(),
    });
    let error = kernel(&config(wire, &fake))
        .run_turn(Arc::clone(&home.home), turn("Hi"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("could not be read"), "{error}");
    assert!(
        error.user_message().contains("couldn't read"),
        "{}",
        error.user_message()
    );
}

#[tokio::test]
async fn rate_limit_waits_as_long_as_retry_after_ms_says() {
    let fake = FakeLlm::start().await;
    let home = home();
    fake.push(Step::Respond {
        status: 429,
        headers: vec![("retry-after-ms".into(), "300".into())],
        body: json!({"error": {"message": "slow down"}}).to_string(),
    });
    fake.push(Step::text("Done."));
    let started = std::time::Instant::now();
    let outcome = run(Wire::OpenAi, &fake, &home, "Hi").await;
    assert_eq!(outcome.reply, "Done.");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn slow_model_times_out_with_a_clear_message() {
    let fake = FakeLlm::start().await;
    let home = home();
    let mut config = config(Wire::Anthropic, &fake);
    config.timeout_secs = 1;
    config.max_retries = 0;
    fake.push(Step::delayed(
        Duration::from_secs(3),
        Step::text("too late"),
    ));
    let error = kernel(&config)
        .run_turn(Arc::clone(&home.home), turn("Hi"))
        .await
        .unwrap_err();
    assert!(
        error.user_message().contains("didn't answer in time"),
        "{}",
        error.user_message()
    );
}

#[tokio::test]
async fn local_openai_compatible_server_needs_no_key() {
    let fake = FakeLlm::start().await;
    let home = home();
    let config = config(Wire::OpenAi, &fake);
    let kernel = Kernel::from_config_with_env(&config, |_| None).unwrap();
    assert!(kernel.is_configured());
    let outcome = kernel
        .run_turn(Arc::clone(&home.home), turn("ping"))
        .await
        .unwrap();
    assert_eq!(outcome.reply, "echo: ping");
    assert_eq!(fake.requests()[0].header("authorization"), None);
}

/// Parses an SSE body into `(event name, data)` pairs.
fn sse_events(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push_str(value);
                }
            }
            (event, data)
        })
        .collect()
}

async fn stream(url: String, body: Value) -> (String, Vec<(Option<String>, String)>) {
    let response = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (kind, sse_events(&response.text().await.unwrap()))
}

#[tokio::test]
async fn fake_streams_real_sse_formats() {
    let fake = FakeLlm::start().await;
    let args = json!({"path": "data/a.md", "content": "héllo wörld, a longer text"});

    // OpenAI: text deltas, then tool-call deltas, each closed by a finish chunk and [DONE].
    fake.push(Step::text("Hello streaming wörld!"));
    fake.push(Step::tool_call("write_file", args.clone()));
    let body = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "hi"}]});
    let url = format!("{}/chat/completions", fake.openai_base());
    let (kind, events) = stream(url.clone(), body.clone()).await;
    assert!(kind.starts_with("text/event-stream"));
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello streaming wörld!");
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop")
    );
    assert!(
        chunks.last().unwrap()["usage"]["total_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );

    let (_, events) = stream(url, body).await;
    let chunks: Vec<Value> = events
        .iter()
        .filter(|(_, d)| d != "[DONE]")
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(deltas[0]["function"]["name"], "write_file");
    assert!(deltas[0]["id"].as_str().unwrap().starts_with("call_"));
    let arguments: String = deltas
        .iter()
        .filter_map(|d| d["function"]["arguments"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&arguments).unwrap(), args);
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls")
    );

    // Anthropic: the documented event sequence with text_delta and input_json_delta.
    fake.push(Step::text("Hi from Claude"));
    fake.push(Step::tool_call("write_file", args.clone()));
    let body = json!({"model": "m", "max_tokens": 10, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]});
    let url = format!("{}/v1/messages", fake.anthropic_base());
    let (kind, events) = stream(url.clone(), body.clone()).await;
    assert!(kind.starts_with("text/event-stream"));
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_deref().unwrap()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"]);
    let data: Vec<Value> = events
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    for ((name, _), value) in events.iter().zip(&data) {
        assert_eq!(
            value["type"].as_str(),
            name.as_deref(),
            "event name and data type agree"
        );
    }
    let text: String = data
        .iter()
        .filter_map(|d| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Hi from Claude");
    assert_eq!(data[data.len() - 2]["delta"]["stop_reason"], "end_turn");

    let (_, events) = stream(url, body).await;
    let data: Vec<Value> = events
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    let start = data
        .iter()
        .find(|d| d["type"] == "content_block_start")
        .unwrap();
    assert_eq!(start["content_block"]["type"], "tool_use");
    assert_eq!(start["content_block"]["name"], "write_file");
    let partial: String = data
        .iter()
        .filter(|d| d["delta"]["type"] == "input_json_delta")
        .filter_map(|d| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&partial).unwrap(), args);
    assert_eq!(data[data.len() - 2]["delta"]["stop_reason"], "tool_use");
    assert!(data.iter().any(|d| d["type"] == "content_block_stop"));
}

/// Streaming through the real providers: text as it comes, the same answer as `complete`.
mod streaming {
    use std::sync::Mutex;

    use matrix_os::{
        kernel::provider::{
            ChatRequest, ChatResponse, Provider, ProviderError, Settings, TextSink, anthropic,
            openai, retry::RetryPolicy,
        },
        secret::Secret,
    };

    use super::*;

    #[derive(Default)]
    struct Pieces(Mutex<Vec<String>>);

    impl TextSink for Pieces {
        fn text(&self, delta: &str) {
            self.0.lock().unwrap().push(delta.to_owned());
        }
    }

    impl Pieces {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    fn provider(wire: Wire, fake: &FakeLlm) -> Box<dyn Provider> {
        let base = match wire {
            Wire::OpenAi => fake.openai_base(),
            Wire::Anthropic => fake.anthropic_base(),
        };
        let settings = Settings {
            base_url: base.parse().unwrap(),
            model: "fake-model".into(),
            api_key: Some(Secret::new(KEY)),
            api_key_env: KEY_ENV.into(),
            timeout: Duration::from_secs(5),
            retry: RetryPolicy {
                base_delay: Duration::from_millis(5),
                ..RetryPolicy::new(2)
            },
        };
        match wire {
            Wire::OpenAi => Box::new(openai::OpenAi::new(settings).unwrap()),
            Wire::Anthropic => Box::new(anthropic::Anthropic::new(settings).unwrap()),
        }
    }

    fn request() -> ChatRequest {
        ChatRequest {
            system: "You are a test.".into(),
            messages: vec![Message::user("hi")],
            tools: Vec::new(),
            max_tokens: 256,
            model: None,
        }
    }

    /// The input tokens the fake charges for its first request (a quarter of the body).
    fn charged(fake: &FakeLlm) -> u64 {
        (fake.requests()[0].body.to_string().len() as u64 / 4).max(1)
    }

    async fn stream_equals_complete(wire: Wire) {
        let args = json!({"path": "notes/a.md", "content": "héllo wörld, a longer text"});
        let steps = [
            Step::text("Hello streaming wörld, in several pieces! 🌧"),
            Step::ToolCalls(vec![
                ("write_file".into(), args),
                ("list_files".into(), json!({})),
            ]),
        ];
        for step in steps {
            // A fake each: call ids and prompt cache counters start the same.
            let whole_fake = FakeLlm::start().await;
            whole_fake.push(step.clone());
            let whole = provider(wire, &whole_fake)
                .complete(&request())
                .await
                .unwrap();
            let stream_fake = FakeLlm::start().await;
            stream_fake.push(step.clone());
            let sink = Pieces::default();
            let streamed = provider(wire, &stream_fake)
                .stream(&request(), &sink)
                .await
                .unwrap();
            assert_eq!(stream_fake.requests()[0].body["stream"], json!(true));
            let pieces = sink.take();
            if let Step::Text(text) = &step {
                assert!(pieces.len() > 1, "{pieces:?}");
                assert_eq!(&pieces.concat(), text);
            } else {
                assert!(pieces.is_empty(), "{pieces:?}");
                assert_eq!(streamed.tool_calls.len(), 2);
            }
            // The streamed body is longer (the `stream` flags), so it is charged more input.
            let without_usage = |r: &ChatResponse| ChatResponse {
                usage: None,
                ..r.clone()
            };
            assert_eq!(without_usage(&streamed), without_usage(&whole));
            let (s, w) = (streamed.usage.unwrap(), whole.usage.unwrap());
            assert_eq!(s.input_tokens, charged(&stream_fake));
            assert_eq!(w.input_tokens, charged(&whole_fake));
            assert_eq!(s.output_tokens, w.output_tokens);
            assert_eq!(s.cache_read_tokens, w.cache_read_tokens);
            assert_eq!(s.cache_write_tokens > 0, w.cache_write_tokens > 0);
        }
    }

    /// An answer that starts as an event stream and breaks with an error event, after the
    /// text `before` (none: at once).
    fn broken_stream(wire: Wire, before: Option<&str>) -> Step {
        let body = match wire {
            Wire::OpenAi => {
                let text = before.map(|t| {
                    let chunk = json!({"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]});
                    format!("data: {chunk}\n\n")
                });
                let error = json!({"error": {"message": "The server had an error", "type": "server_error", "param": null, "code": null}});
                format!("{}data: {error}\n\n", text.unwrap_or_default())
            }
            Wire::Anthropic => {
                let text = before.map(|t| {
                    let start = json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}});
                    let delta = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}});
                    format!("event: content_block_start\ndata: {start}\n\nevent: content_block_delta\ndata: {delta}\n\n")
                });
                let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
                format!(
                    "{}event: error\ndata: {error}\n\n",
                    text.unwrap_or_default()
                )
            }
        };
        Step::Respond {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body,
        }
    }

    async fn stream_retries_only_until_text_was_given(wire: Wire) {
        // Failures before any text: an error status, then a stream that breaks at once.
        let fake = FakeLlm::start().await;
        fake.push(Step::error(500, "boom"));
        fake.push(broken_stream(wire, None));
        fake.push(Step::text("third time lucky"));
        let sink = Pieces::default();
        let answer = provider(wire, &fake)
            .stream(&request(), &sink)
            .await
            .unwrap();
        assert_eq!(answer.content, "third time lucky");
        assert_eq!(sink.take().concat(), "third time lucky");
        assert_eq!(fake.requests().len(), 3);

        // A break after text: final, though the error is transient.
        let fake = FakeLlm::start().await;
        fake.push(broken_stream(wire, Some("Hal")));
        fake.push(Step::text("never asked for"));
        let error = provider(wire, &fake)
            .stream(&request(), &sink)
            .await
            .unwrap_err();
        assert_eq!(sink.take(), ["Hal"]);
        assert_eq!(fake.requests().len(), 1);
        assert!(
            matches!(error, ProviderError::Status { .. }) && error.is_transient(),
            "{error:?}"
        );
    }

    both_wires!(
        stream_equals_complete,
        stream_retries_only_until_text_was_given
    );
}
