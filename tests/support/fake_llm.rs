//! A scripted fake language model server for tests and benches.
//!
//! One server speaks both wire protocols: OpenAI Chat Completions (`POST /v1/chat/completions`)
//! and Anthropic Messages (`POST /v1/messages`), plus `GET /v1/models` in a shape both model
//! list checks accept. Answers come from a queue of [`Step`]s; with the queue empty it echoes
//! the last user text (`echo: <text>`). Requests with `"stream": true` get the real SSE
//! formats. Every request is recorded for assertions.
//!
//! Self-contained (axum, tokio, serde_json, futures only) so that any test binary or bench can
//! include it with `#[path = "support/fake_llm.rs"] mod fake_llm;`.

// Each including binary uses a different part of this file, and its items are `pub` for them.
#![allow(dead_code, unreachable_pub)]

use std::{
    collections::{BTreeMap, VecDeque},
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::Response,
    routing::{get, post},
};
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Step {
    /// A text answer.
    Text(String),
    /// Tool calls: `(name, arguments)`, in order.
    ToolCalls(Vec<(String, Value)>),
    /// An error status with this raw body (use [`Step::error`] for a provider-shaped body).
    Error(u16, String),
    /// Any response: status, extra headers, raw body (e.g. `retry-after`, broken JSON).
    Respond {
        /// HTTP status.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// Raw body.
        body: String,
    },
    /// Wait, then answer with the inner step (for timeouts).
    Delay(Duration, Box<Step>),
    /// A text answer repeating every tool result since the last user text, one per line
    /// (a model that blurts out whatever its tools gave it).
    EchoToolResults,
    /// A text answer made from the last user text (a model that rewrites what it is given).
    Rewrite(Rewriter),
}

/// How a [`Step::Rewrite`] turns the last user text into its answer.
#[derive(Clone)]
pub struct Rewriter(pub Arc<dyn Fn(&str) -> String + Send + Sync>);

impl std::fmt::Debug for Rewriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rewriter(..)")
    }
}

impl Step {
    /// A text answer.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// A single tool call.
    pub fn tool_call(name: impl Into<String>, arguments: Value) -> Self {
        Self::ToolCalls(vec![(name.into(), arguments)])
    }

    /// Tool calls written as JSON, `[[tool, arguments], ...]` (an injection corpus' `obey`
    /// lists), each `(from, to)` of `substitutions` replaced in the arguments first.
    pub fn tool_calls_from(calls: &Value, substitutions: &[(&str, &str)]) -> Self {
        let calls = calls
            .as_array()
            .unwrap_or_else(|| panic!("not a list of tool calls: {calls}"))
            .iter()
            .map(|call| {
                let mut args = call[1].to_string();
                for (from, to) in substitutions {
                    args = args.replace(from, to);
                }
                let args = serde_json::from_str(&args)
                    .unwrap_or_else(|e| panic!("{args} is not JSON after substitution: {e}"));
                let Some(name) = call[0].as_str() else {
                    panic!("{call} does not start with a tool name");
                };
                (name.to_owned(), args)
            })
            .collect();
        Self::ToolCalls(calls)
    }

    /// An error status whose body is `{"error": {"message": ...}}`, which both protocols'
    /// clients read (Anthropic's body also has `"type": "error"`).
    pub fn error(status: u16, message: &str) -> Self {
        let body = json!({"type": "error", "error": {"type": "api_error", "message": message}});
        Self::Error(status, body.to_string())
    }

    /// A text answer made from the last user text by `rewrite`.
    pub fn rewrite(rewrite: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        Self::Rewrite(Rewriter(Arc::new(rewrite)))
    }

    /// `inner` after `delay`.
    pub fn delayed(delay: Duration, inner: Step) -> Self {
        Self::Delay(delay, Box::new(inner))
    }
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// Path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// JSON body (`Null` when empty or not JSON).
    pub body: Value,
}

impl RecordedRequest {
    /// The system prompt as text, in either wire format (OpenAI: the first `system`
    /// message; Anthropic: `system` as a string or as text blocks).
    pub fn system_text(&self) -> String {
        let text_of = |value: &Value| match value {
            Value::String(text) => text.clone(),
            Value::Array(blocks) => blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
            _ => String::new(),
        };
        if let Some(system) = self.body.get("system") {
            return text_of(system);
        }
        self.body["messages"]
            .as_array()
            .and_then(|m| m.first())
            .filter(|m| m["role"] == "system")
            .map(|m| text_of(&m["content"]))
            .unwrap_or_default()
    }

    /// The images of the newest user message, in either wire format (OpenAI: `image_url`
    /// parts with a `data:` URL; Anthropic: `image` blocks with a base64 source).
    pub fn images(&self) -> Vec<Image> {
        use base64::Engine as _;
        let decode = |data: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap_or_default()
        };
        let Some(message) = self.body["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        else {
            return Vec::new();
        };
        let mut images = Vec::new();
        for part in message["content"].as_array().into_iter().flatten() {
            match part["type"].as_str() {
                Some("image_url") => {
                    let url = part["image_url"]["url"].as_str().unwrap_or_default();
                    if let Some((head, data)) = url
                        .strip_prefix("data:")
                        .and_then(|rest| rest.split_once(','))
                    {
                        images.push(Image {
                            media_type: head.trim_end_matches(";base64").to_owned(),
                            data: decode(data),
                        });
                    }
                }
                Some("image") => images.push(Image {
                    media_type: part["source"]["media_type"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    data: decode(part["source"]["data"].as_str().unwrap_or_default()),
                }),
                _ => {}
            }
        }
        images
    }

    /// The text of the newest user message that has text, in this request's wire format.
    pub fn last_user_text(&self) -> String {
        let wire = if self.path.ends_with("/messages") {
            Wire::Anthropic
        } else {
            Wire::OpenAi
        };
        last_user_text(wire, &self.body)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

#[derive(Default)]
struct Shared {
    steps: Mutex<VecDeque<Step>>,
    requests: Mutex<Vec<RecordedRequest>>,
    required_key: Mutex<Option<String>>,
    ids: AtomicU64,
    /// Requests whose last user text holds the marker wait this long first.
    slow: Mutex<Option<(String, Duration)>>,
    /// The cacheable form of each model request served (see [`cache_key`]), for the prompt
    /// cache counters.
    prompts: Mutex<Vec<String>>,
    /// Requests whose system prompt contains the marker get this text, whatever is queued.
    by_system: Mutex<Vec<(String, String)>>,
    /// Streamed answers: the wait before the first piece of the answer, and between pieces.
    stream_timing: Mutex<Option<(Duration, Duration)>>,
    /// When each streamed answer sent its first and its last piece.
    streams: Arc<Mutex<Vec<StreamTimes>>>,
    /// Texts the transcription endpoint answers, in order (empty: a default text).
    transcripts: Mutex<VecDeque<String>>,
    /// Audio files the transcription endpoint received.
    transcriptions: Mutex<Vec<Transcription>>,
    /// Audio the speech endpoint answers with, in order (empty: a few default bytes).
    spoken: Mutex<VecDeque<Vec<u8>>>,
    /// JSON bodies the speech endpoint received.
    speeches: Mutex<Vec<Value>>,
}

/// A file the fake transcription endpoint received.
#[derive(Debug, Clone)]
pub struct Transcription {
    /// The `model` field.
    pub model: String,
    /// The `file` part's file name.
    pub file_name: String,
    /// The `file` part's content type.
    pub content_type: String,
    /// The `file` part's bytes.
    pub bytes: Vec<u8>,
}

/// An image in a model request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Its media type, e.g. `image/png`.
    pub media_type: String,
    /// Its bytes, base64 decoded.
    pub data: Vec<u8>,
}

/// When a streamed answer was sent.
#[derive(Debug, Clone, Copy)]
pub struct StreamTimes {
    /// The first piece of the answer (after the opening event).
    pub first: SystemTime,
    /// The last event.
    pub last: SystemTime,
}

/// Locks, ignoring poisoning: a panicking test must not hide its cause behind a second panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The running fake; stops when dropped.
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wire {
    OpenAi,
    Anthropic,
}

impl FakeLlm {
    /// Starts a fake on `127.0.0.1` and a free port.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v1/chat/completions", post(openai))
            .route("/v1/messages", post(anthropic))
            .route("/v1/models", get(models))
            .route("/v1/audio/transcriptions", post(transcriptions))
            .route("/v1/audio/speech", post(speech))
            .with_state(Arc::clone(&shared));
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(error) => panic!("fake LLM cannot bind 127.0.0.1:0: {error}"),
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(error) => panic!("fake LLM has no address: {error}"),
        };
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            shared,
            server,
        }
    }

    /// Base URL for an OpenAI-compatible client: `http://127.0.0.1:PORT/v1`.
    pub fn openai_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Base URL for an Anthropic client: `http://127.0.0.1:PORT`.
    pub fn anthropic_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues the next answer.
    pub fn push(&self, step: Step) {
        lock(&self.shared.steps).push_back(step);
    }

    /// Steps not used yet.
    pub fn pending(&self) -> usize {
        lock(&self.shared.steps).len()
    }

    /// Refuses requests without this key (Bearer or `x-api-key`) with a 401.
    pub fn require_key(&self, key: &str) {
        *lock(&self.shared.required_key) = Some(key.to_owned());
    }

    /// Answers requests whose last user text contains `marker` only after `delay` (a slow
    /// model for some conversations, whatever their order).
    pub fn slow_when(&self, marker: &str, delay: Duration) {
        *lock(&self.shared.slow) = Some((marker.to_owned(), delay));
    }

    /// Answers every request whose system prompt contains `marker` with `text`, without
    /// touching the queue (a side request such as a summary, whenever it comes).
    pub fn answer_when_system(&self, marker: &str, text: &str) {
        lock(&self.shared.by_system).push((marker.to_owned(), text.to_owned()));
    }

    /// Streams answers slowly: `first` before the first piece of the answer (the opening
    /// event goes at once), `between` before each later event (a model's time to first token
    /// and its pace).
    pub fn stream_timing(&self, first: Duration, between: Duration) {
        *lock(&self.shared.stream_timing) = Some((first, between));
    }

    /// When each streamed answer so far sent its first and last piece, oldest first.
    pub fn streams(&self) -> Vec<StreamTimes> {
        lock(&self.shared.streams).clone()
    }

    /// The next transcription answers with `text` (later ones: the default text, "this is a
    /// transcript", unless more are queued).
    pub fn transcribe_with(&self, text: &str) {
        lock(&self.shared.transcripts).push_back(text.to_owned());
    }

    /// Every file the transcription endpoint received, oldest first.
    pub fn transcriptions(&self) -> Vec<Transcription> {
        lock(&self.shared.transcriptions).clone()
    }

    /// The next speech request answers with these audio bytes.
    pub fn speak_with(&self, audio: Vec<u8>) {
        lock(&self.shared.spoken).push_back(audio);
    }

    /// Every JSON body the speech endpoint received, oldest first.
    pub fn speeches(&self) -> Vec<Value> {
        lock(&self.shared.speeches).clone()
    }

    /// Every model request so far, oldest first (the audio endpoints' are kept apart: see
    /// [`FakeLlm::transcriptions`] and [`FakeLlm::speeches`]).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Every distinct tool result the model was given, across the requests it served (later
    /// requests repeat earlier results: the turn's steps, the session's history).
    pub fn tool_results(&self) -> Vec<String> {
        let mut results = Vec::new();
        for request in self.requests() {
            for message in request.body["messages"].as_array().into_iter().flatten() {
                if message["role"] == "tool" {
                    results.push(message["content"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
        results.sort();
        results.dedup();
        results
    }
}

async fn openai(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(Wire::OpenAi, &shared, "POST", uri, headers, body).await
}

async fn anthropic(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(Wire::Anthropic, &shared, "POST", uri, headers, body).await
}

async fn models(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let wire = if headers.contains_key("x-api-key") {
        Wire::Anthropic
    } else {
        Wire::OpenAi
    };
    record(&shared, "GET", &uri, &headers, Value::Null);
    if let Some(denied) = check_key(&shared, wire, &headers) {
        return denied;
    }
    // OpenAI's list shape plus Anthropic's fields: each client reads what it knows.
    let list = json!({
        "object": "list",
        "data": [{
            "id": "fake-model", "object": "model", "type": "model", "created": 1_700_000_000,
            "owned_by": "fake", "display_name": "Fake Model", "created_at": "2024-01-01T00:00:00Z",
        }],
        "has_more": false, "first_id": "fake-model", "last_id": "fake-model",
    });
    json_response(200, &list)
}

/// `POST /v1/audio/transcriptions`: a multipart form with `file` and `model`, answered with
/// `{"text": ...}` as OpenAI does for `response_format=json`.
async fn transcriptions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(boundary) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("boundary=").nth(1))
        .map(|b| b.trim_matches('"').to_owned())
    else {
        return json_response(
            400,
            &json!({"error": {"message": "expected multipart/form-data", "type": "invalid_request_error"}}),
        );
    };
    let parts = multipart_parts(&body, &boundary);
    let field = |name: &str| parts.iter().find(|p| p.name == name);
    let (Some(file), Some(model)) = (field("file"), field("model")) else {
        return json_response(
            400,
            &json!({"error": {"message": "file and model are required", "type": "invalid_request_error"}}),
        );
    };
    lock(&shared.transcriptions).push(Transcription {
        model: String::from_utf8_lossy(&model.data).into_owned(),
        file_name: file.file_name.clone().unwrap_or_default(),
        content_type: file.content_type.clone().unwrap_or_default(),
        bytes: file.data.clone(),
    });
    let text = lock(&shared.transcripts)
        .pop_front()
        .unwrap_or_else(|| "this is a transcript".to_owned());
    json_response(200, &json!({ "text": text }))
}

/// `POST /v1/audio/speech`: a JSON body (`model`, `input`, `voice`, `response_format`),
/// answered with audio bytes.
async fn speech(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return json_response(
            400,
            &json!({"error": {"message": "body is not JSON", "type": "invalid_request_error"}}),
        );
    };
    lock(&shared.speeches).push(request);
    let audio = lock(&shared.spoken)
        .pop_front()
        .unwrap_or_else(|| b"OggS\0fake-speech".to_vec());
    let mut response = Response::new(Body::from(audio));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/ogg"));
    response
}

/// One part of a multipart form.
struct FormPart {
    name: String,
    file_name: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

/// The parts of a `multipart/form-data` body (enough of RFC 7578 for what reqwest sends).
fn multipart_parts(body: &[u8], boundary: &str) -> Vec<FormPart> {
    let delimiter = format!("--{boundary}").into_bytes();
    let find = |haystack: &[u8], needle: &[u8], from: usize| {
        (from..=haystack.len().saturating_sub(needle.len()))
            .find(|&i| haystack[i..].starts_with(needle))
    };
    let mut parts = Vec::new();
    let mut at = match find(body, &delimiter, 0) {
        Some(at) => at + delimiter.len(),
        None => return parts,
    };
    loop {
        if body[at..].starts_with(b"--") {
            break;
        }
        let start = at + 2; // CRLF after the delimiter
        let Some(headers_end) = find(body, b"\r\n\r\n", start) else {
            break;
        };
        let Some(next) = find(body, &delimiter, headers_end) else {
            break;
        };
        let head = String::from_utf8_lossy(&body[start..headers_end]).into_owned();
        let data = body[headers_end + 4..next.saturating_sub(2)].to_vec();
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .unwrap_or_default()
            .to_owned();
        let param = |key: &str| {
            disposition
                .split(';')
                .map(str::trim)
                .find_map(|p| p.strip_prefix(&format!("{key}=")))
                .map(|v| v.trim_matches('"').to_owned())
        };
        let content_type = head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            })
            .map(|(_, v)| v.trim().to_owned());
        parts.push(FormPart {
            name: param("name").unwrap_or_default(),
            file_name: param("filename"),
            content_type,
            data,
        });
        at = next + delimiter.len();
    }
    parts
}

fn record(shared: &Shared, method: &str, uri: &Uri, headers: &HeaderMap, body: Value) {
    let headers = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    lock(&shared.requests).push(RecordedRequest {
        method: method.to_owned(),
        path: uri.path().to_owned(),
        headers,
        body,
    });
}

fn check_key(shared: &Shared, wire: Wire, headers: &HeaderMap) -> Option<Response> {
    let required = lock(&shared.required_key).clone()?;
    let given = match wire {
        Wire::OpenAi => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned),
        Wire::Anthropic => headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    if given.as_deref() == Some(required.as_str()) {
        return None;
    }
    let body = match wire {
        Wire::OpenAi => {
            json!({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "code": "invalid_api_key"}})
        }
        Wire::Anthropic => {
            json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
        }
    };
    Some(json_response(401, &body))
}

async fn handle(
    wire: Wire,
    shared: &Shared,
    method: &str,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    record(shared, method, &uri, &headers, body.clone());
    if let Some(denied) = check_key(shared, wire, &headers) {
        return denied;
    }
    if !body.is_object() {
        return json_response(
            400,
            &json!({"type": "error", "error": {"type": "invalid_request_error", "message": "body is not a JSON object"}}),
        );
    }
    let slow = lock(&shared.slow).clone();
    if let Some((marker, delay)) = slow
        && last_user_text(wire, &body).contains(&marker)
    {
        tokio::time::sleep(delay).await;
    }
    let system = RecordedRequest {
        method: String::new(),
        path: String::new(),
        headers: BTreeMap::new(),
        body: body.clone(),
    }
    .system_text();
    let by_system = lock(&shared.by_system)
        .iter()
        .find(|(marker, _)| system.contains(marker.as_str()))
        .map(|(_, text)| Step::Text(text.clone()));
    let queued = by_system.or_else(|| lock(&shared.steps).pop_front());
    let mut step =
        queued.unwrap_or_else(|| Step::Text(format!("echo: {}", last_user_text(wire, &body))));
    while let Step::Delay(delay, inner) = step {
        tokio::time::sleep(delay).await;
        step = *inner;
    }
    let id = shared.ids.fetch_add(1, Ordering::Relaxed) + 1;
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake-model")
        .to_owned();
    let input_tokens = (raw.len() as u64 / 4).max(1);
    let cache = cache_counts(wire, shared, &body, input_tokens);
    let answer = match step {
        Step::Text(text) => Answer::Text(text),
        Step::ToolCalls(calls) => Answer::Tools(calls),
        Step::Error(status, body) => return raw_response(status, &[], body),
        Step::Respond {
            status,
            headers,
            body,
        } => return raw_response(status, &headers, body),
        Step::Delay(..) => Answer::Text(String::new()),
        Step::EchoToolResults => Answer::Text(tool_results(&body).join("\n")),
        Step::Rewrite(Rewriter(rewrite)) => Answer::Text(rewrite(&last_user_text(wire, &body))),
    };
    let reply = Reply {
        id,
        model,
        input_tokens,
        cache,
        answer,
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    match (wire, stream) {
        (Wire::OpenAi, false) => json_response(200, &reply.openai()),
        (Wire::Anthropic, false) => json_response(200, &reply.anthropic()),
        (Wire::OpenAi, true) => {
            let usage = body
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            sse_response(shared, reply.openai_events(usage))
        }
        (Wire::Anthropic, true) => sse_response(shared, reply.anthropic_events()),
    }
}

/// Tool results after the newest user text, in both wire formats (OpenAI `role: tool`
/// messages, Anthropic `tool_result` parts of user messages).
fn tool_results(body: &Value) -> Vec<String> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut results = Vec::new();
    for message in messages.iter().rev() {
        let role = message.get("role").and_then(Value::as_str);
        match (role, message.get("content")) {
            (Some("tool"), Some(Value::String(text))) => results.push(text.clone()),
            (Some("user"), Some(Value::String(_))) => break,
            (Some("user"), Some(Value::Array(parts))) => {
                let mut any_result = false;
                for part in parts.iter().rev() {
                    if part.get("type").and_then(Value::as_str) != Some("tool_result") {
                        continue;
                    }
                    any_result = true;
                    let text = match part.get("content") {
                        Some(Value::String(text)) => text.clone(),
                        Some(Value::Array(inner)) => inner
                            .iter()
                            .filter_map(|p| p.get("text").and_then(Value::as_str))
                            .collect::<Vec<_>>()
                            .join(""),
                        _ => String::new(),
                    };
                    results.push(text);
                }
                if !any_result {
                    break;
                }
            }
            _ => {}
        }
    }
    results.reverse();
    results
}

/// What a provider's prompt cache matches on: tools, system prompt and messages in request
/// order, with Anthropic's `cache_control` markers left out (they are not part of the prompt).
fn cache_key(body: &Value) -> String {
    fn strip(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter(|(k, _)| k.as_str() != "cache_control")
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    let mut key = strip(&body["tools"]).to_string();
    key.push_str(&strip(&body["system"]).to_string());
    for message in body["messages"].as_array().into_iter().flatten() {
        key.push_str(&strip(message).to_string());
    }
    key
}

/// Prompt cache counters for a request of `input_tokens`, like a provider with a perfect
/// cache would report them: the part of this request's [`cache_key`] that starts an
/// earlier request is read from the cache. OpenAI reports it as `cached_tokens`; Anthropic
/// reads only when the request asks for caching (`cache_control`), and writes the rest.
fn cache_counts(wire: Wire, shared: &Shared, body: &Value, input_tokens: u64) -> CacheCounts {
    let key = cache_key(body);
    let mut prompts = lock(&shared.prompts);
    let common = prompts
        .iter()
        .map(|earlier| {
            earlier
                .bytes()
                .zip(key.bytes())
                .take_while(|(a, b)| a == b)
                .count()
        })
        .max()
        .unwrap_or(0);
    prompts.push(key.clone());
    let share = |bytes: usize| input_tokens * bytes as u64 / (key.len().max(1) as u64);
    let read = share(common).min(input_tokens);
    match wire {
        Wire::OpenAi => CacheCounts { read, written: 0 },
        Wire::Anthropic if body.to_string().contains("\"cache_control\"") => CacheCounts {
            read,
            written: input_tokens - read,
        },
        Wire::Anthropic => CacheCounts::default(),
    }
}

/// The text of the newest user message that has text (tool results carry none). Of an
/// Anthropic message with several text blocks, the last one (matrix-os sends its note
/// first, in the same message).
fn last_user_text(wire: Wire, body: &Value) -> String {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for message in messages.iter().rev() {
        if message.get("role").and_then(Value::as_str) != Some("user") {
            continue;
        }
        let text = match message.get("content") {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(parts)) if wire == Wire::OpenAi => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
            Some(Value::Array(parts)) => parts
                .iter()
                .rev()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .find_map(|p| p.get("text").and_then(Value::as_str))
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        };
        if !text.is_empty() {
            return text;
        }
    }
    String::new()
}

enum Answer {
    Text(String),
    Tools(Vec<(String, Value)>),
}

/// Prompt cache counters of one request, in tokens.
#[derive(Default, Clone, Copy)]
struct CacheCounts {
    read: u64,
    written: u64,
}

struct Reply {
    id: u64,
    model: String,
    /// All input tokens, cached or not.
    input_tokens: u64,
    cache: CacheCounts,
    answer: Answer,
}

impl Reply {
    fn output_tokens(&self) -> u64 {
        match &self.answer {
            Answer::Text(text) => text.len() as u64 / 4 + 1,
            Answer::Tools(calls) => calls
                .iter()
                .map(|(n, a)| (n.len() + a.to_string().len()) as u64 / 4 + 1)
                .sum(),
        }
    }

    fn openai_call_id(&self, i: usize) -> String {
        format!("call_fake_{}_{i}", self.id)
    }

    fn anthropic_call_id(&self, i: usize) -> String {
        format!("toolu_fake_{}_{i}", self.id)
    }

    fn openai_usage(&self) -> Value {
        let (input, output) = (self.input_tokens, self.output_tokens());
        json!({
            "prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output,
            "prompt_tokens_details": {"cached_tokens": self.cache.read, "audio_tokens": 0},
        })
    }

    /// Anthropic's input counters: `input_tokens` is what was neither read from nor written
    /// to the cache.
    fn anthropic_usage(&self, output_tokens: u64) -> Value {
        let uncached = self.input_tokens - self.cache.read - self.cache.written;
        json!({
            "input_tokens": uncached, "output_tokens": output_tokens,
            "cache_read_input_tokens": self.cache.read,
            "cache_creation_input_tokens": self.cache.written,
        })
    }

    fn openai(&self) -> Value {
        let (message, finish) = match &self.answer {
            Answer::Text(text) => (
                json!({"role": "assistant", "content": text, "refusal": null}),
                "stop",
            ),
            Answer::Tools(calls) => {
                let calls: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(i, (name, args))| {
                        json!({
                            "id": self.openai_call_id(i), "type": "function",
                            "function": {"name": name, "arguments": args.to_string()},
                        })
                    })
                    .collect();
                (
                    json!({"role": "assistant", "content": null, "tool_calls": calls, "refusal": null}),
                    "tool_calls",
                )
            }
        };
        json!({
            "id": format!("chatcmpl-fake-{}", self.id), "object": "chat.completion",
            "created": 1_700_000_000, "model": self.model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": self.openai_usage(),
        })
    }

    fn anthropic(&self) -> Value {
        let (content, stop) = match &self.answer {
            Answer::Text(text) => (vec![json!({"type": "text", "text": text})], "end_turn"),
            Answer::Tools(calls) => {
                let blocks = calls
                    .iter()
                    .enumerate()
                    .map(|(i, (name, args))| json!({"type": "tool_use", "id": self.anthropic_call_id(i), "name": name, "input": args}))
                    .collect();
                (blocks, "tool_use")
            }
        };
        json!({
            "id": format!("msg_fake_{}", self.id), "type": "message", "role": "assistant",
            "model": self.model, "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": self.anthropic_usage(self.output_tokens()),
        })
    }

    fn openai_events(&self, include_usage: bool) -> Vec<String> {
        let chunk = |delta: Value, finish: Value| {
            let chunk = json!({
                "id": format!("chatcmpl-fake-{}", self.id), "object": "chat.completion.chunk",
                "created": 1_700_000_000, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            });
            format!("data: {chunk}\n\n")
        };
        let mut events = vec![chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )];
        let finish = match &self.answer {
            Answer::Text(text) => {
                events.extend(
                    pieces(text)
                        .into_iter()
                        .map(|p| chunk(json!({"content": p}), Value::Null)),
                );
                "stop"
            }
            Answer::Tools(calls) => {
                for (i, (name, args)) in calls.iter().enumerate() {
                    let start = json!({"tool_calls": [{"index": i, "id": self.openai_call_id(i), "type": "function", "function": {"name": name, "arguments": ""}}]});
                    events.push(chunk(start, Value::Null));
                    for piece in pieces(&args.to_string()) {
                        let delta =
                            json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]});
                        events.push(chunk(delta, Value::Null));
                    }
                }
                "tool_calls"
            }
        };
        events.push(chunk(json!({}), json!(finish)));
        if include_usage {
            let usage = json!({
                "id": format!("chatcmpl-fake-{}", self.id), "object": "chat.completion.chunk",
                "created": 1_700_000_000, "model": self.model, "choices": [], "usage": self.openai_usage(),
            });
            events.push(format!("data: {usage}\n\n"));
        }
        events.push("data: [DONE]\n\n".to_owned());
        events
    }

    fn anthropic_events(&self) -> Vec<String> {
        let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
        let mut events = vec![event(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": format!("msg_fake_{}", self.id), "type": "message", "role": "assistant",
                "model": self.model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": self.anthropic_usage(1),
            }}),
        )];
        let stop = match &self.answer {
            Answer::Text(text) => {
                events.push(event("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})));
                events.push(event("ping", json!({"type": "ping"})));
                for piece in pieces(text) {
                    events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})));
                }
                events.push(event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                ));
                "end_turn"
            }
            Answer::Tools(calls) => {
                for (i, (name, args)) in calls.iter().enumerate() {
                    let start = json!({"type": "content_block_start", "index": i, "content_block": {"type": "tool_use", "id": self.anthropic_call_id(i), "name": name, "input": {}}});
                    events.push(event("content_block_start", start));
                    for piece in pieces(&args.to_string()) {
                        events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": piece}})));
                    }
                    events.push(event(
                        "content_block_stop",
                        json!({"type": "content_block_stop", "index": i}),
                    ));
                }
                "tool_use"
            }
        };
        events.push(event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": self.output_tokens()}})));
        events.push(event("message_stop", json!({"type": "message_stop"})));
        events
    }
}

/// Splits text into small pieces on character boundaries, like a model's token stream.
fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(7).map(|c| c.iter().collect()).collect()
}

fn json_response(status: u16, body: &Value) -> Response {
    let headers = [("content-type".to_owned(), "application/json".to_owned())];
    raw_response(status, &headers, body.to_string())
}

fn raw_response(status: u16, headers: &[(String, String)], body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn sse_response(shared: &Shared, events: Vec<String>) -> Response {
    let timing = *lock(&shared.stream_timing);
    let log = Arc::clone(&shared.streams);
    let stream = futures::stream::unfold(
        (events.into_iter().enumerate(), None::<SystemTime>),
        move |(mut events, first)| {
            let log = Arc::clone(&log);
            async move {
                let (i, event) = events.next()?;
                let wait = match (timing, i) {
                    (None, _) | (_, 0) => Duration::ZERO,
                    (Some((first, _)), 1) => first,
                    (Some((_, between)), _) => between,
                };
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                let now = SystemTime::now();
                let first = match (i, first) {
                    (0, _) => None,
                    (_, None) => Some(now),
                    (_, some) => some,
                };
                if events.len() == 0
                    && let Some(first) = first
                {
                    lock(&log).push(StreamTimes { first, last: now });
                }
                Some((Ok::<_, Infallible>(event), (events, first)))
            }
        },
    );
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
