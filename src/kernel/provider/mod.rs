//! Language model providers: one trait, one implementation per wire protocol.
//!
//! Each provider turns a [`ChatRequest`] into its JSON body, posts it through the shared retry
//! helper ([`retry`]) and parses the answer into a [`ChatResponse`]. Body building and response
//! parsing are pure functions so they are tested without a network. Streaming
//! ([`Provider::stream`]) uses the same body builders with their `stream` flag set.

pub mod anthropic;
pub mod openai;
pub mod retry;
mod sse;
mod transport;

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use self::retry::RetryPolicy;
use super::message::{Message, ToolCall};
use crate::secret::Secret;

/// How to reach one endpoint; shared by every provider.
#[derive(Debug, Clone)]
pub struct Settings {
    /// API base URL (OpenAI style ends in `/v1`; Anthropic's has no version).
    pub base_url: url::Url,
    /// Model name.
    pub model: String,
    /// API key; `None` for keyless local servers.
    pub api_key: Option<Secret>,
    /// Name of the variable the key came from, for error messages.
    pub api_key_env: String,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
}

/// What a tool is, as told to the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSpec {
    /// Tool name, as the model calls it.
    pub name: String,
    /// What it does and when to use it.
    pub description: String,
    /// JSON Schema of its arguments (an object schema).
    pub parameters: serde_json::Value,
}

/// One model call.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// System prompt (may be empty).
    pub system: String,
    /// The conversation, oldest first, starting with a user message.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// Most tokens the model may produce.
    pub max_tokens: u32,
    /// Model to ask instead of the configured one (a twin's own choice); `None` uses the
    /// provider's configured model.
    pub model: Option<String>,
}

impl ChatRequest {
    /// The model this request goes to: its own [`ChatRequest::model`], or `configured`.
    pub fn model_or<'a>(&'a self, configured: &'a str) -> &'a str {
        self.model.as_deref().unwrap_or(configured)
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// It finished its answer.
    EndTurn,
    /// It wants tools to run.
    ToolUse,
    /// It hit `max_tokens`; the text is cut off.
    MaxTokens,
    /// Anything else the provider reported (content filter, refusal, ...).
    Other(String),
}

/// Token counts reported by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Tokens read, all of them: those read from the prompt cache and those written to it
    /// included (Anthropic reports these three apart; they are added up here).
    pub input_tokens: u64,
    /// Tokens written.
    pub output_tokens: u64,
    /// Of `input_tokens`, those read from the provider's prompt cache (Anthropic
    /// `cache_read_input_tokens`, OpenAI `prompt_tokens_details.cached_tokens`).
    pub cache_read_tokens: u64,
    /// Of `input_tokens`, those written to the prompt cache (Anthropic
    /// `cache_creation_input_tokens`; OpenAI does not report them).
    pub cache_write_tokens: u64,
}

impl Usage {
    /// Both counts added up.
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cache_read_tokens = self
            .cache_read_tokens
            .saturating_add(other.cache_read_tokens);
        self.cache_write_tokens = self
            .cache_write_tokens
            .saturating_add(other.cache_write_tokens);
    }
}

/// The model's answer to one call.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// Text (may be empty when only tools are called).
    pub content: String,
    /// Tools the model wants run, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// Token counts, when reported.
    pub usage: Option<Usage>,
}

/// A failed model call, phrased so that an admin knows what to fix.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered with an error status.
    #[error("HTTP {status} from {url}: {message}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// The endpoint called (no secrets: keys travel in headers).
        url: String,
        /// The provider's own error message.
        message: String,
        /// How long the provider asked us to wait (`retry-after`), if it did.
        retry_after: Option<Duration>,
    },
    /// The key was refused (401/403).
    #[error("the API key was refused (HTTP {status}): {message}")]
    Auth {
        /// HTTP status code.
        status: u16,
        /// The provider's own error message.
        message: String,
    },
    /// The model name is not known to the endpoint.
    #[error(
        "model {model:?} was not found (HTTP {status}: {message}); the model name may be wrong, \
         or llm.base_url may not point at the API"
    )]
    UnknownModel {
        /// The configured model name.
        model: String,
        /// HTTP status code.
        status: u16,
        /// The provider's own error message.
        message: String,
    },
    /// No answer within the configured timeout.
    #[error("no answer from {url} within {timeout:?}")]
    Timeout {
        /// The endpoint called.
        url: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The endpoint could not be reached.
    #[error("could not connect to {url}: {detail}")]
    Connect {
        /// The endpoint called.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The answer was not what the protocol promises (bad JSON, missing fields).
    #[error("the model's answer could not be read: {0}")]
    BadResponse(String),
    /// Retries were used up; `last` is the final failure.
    #[error("{last} (after {attempts} attempts)")]
    GaveUp {
        /// Requests made in total.
        attempts: u32,
        /// The last failure.
        last: Box<ProviderError>,
    },
}

impl ProviderError {
    /// Whether trying again later may help (429, 5xx, timeouts, connection failures).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Timeout { .. } | Self::Connect { .. } => true,
            Self::GaveUp { last, .. } => last.is_transient(),
            Self::Auth { .. } | Self::UnknownModel { .. } | Self::BadResponse(_) => false,
        }
    }

    /// The failure behind retries, and how many requests were made (1 without retries).
    pub fn last_and_attempts(&self) -> (&ProviderError, u32) {
        match self {
            Self::GaveUp { attempts, last } => (last, *attempts),
            other => (other, 1),
        }
    }
}

/// Receives the text of a streamed answer as it comes.
pub trait TextSink: Send + Sync {
    /// More text of the answer: the piece that came after everything given before.
    fn text(&self, delta: &str);
}

/// A language model endpoint.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// Runs one model call (with retries on transient failures).
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError>;

    /// Runs one model call as a stream: the answer's text goes to `sink` piece by piece as
    /// the provider sends it, and the whole answer (text, tool calls, stop reason, usage) is
    /// returned at the end, the same as [`Provider::complete`] would return it. Transient
    /// failures are retried only until the first piece reached `sink`.
    ///
    /// The default asks [`Provider::complete`] and gives its whole text at once.
    async fn stream(
        &self,
        request: &ChatRequest,
        sink: &dyn TextSink,
    ) -> Result<ChatResponse, ProviderError> {
        let response = self.complete(request).await?;
        if !response.content.is_empty() {
            sink.text(&response.content);
        }
        Ok(response)
    }

    /// Checks that the endpoint answers and accepts the key; returns a short OK text.
    async fn check(&self) -> Result<String, ProviderError>;

    /// One line naming protocol, model and endpoint (no secrets).
    fn describe(&self) -> String;
}

/// Shows a URL without any user name or password in it.
pub(crate) fn display_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    // Userinfo in a base URL is a credential; it must not reach logs or rooms.
    if shown.password().is_some() {
        let _ = shown.set_password(None);
    }
    if !shown.username().is_empty() {
        let _ = shown.set_username("");
    }
    shown.as_str().trim_end_matches('/').to_owned()
}

/// Joins a base URL and a path without doubling or losing the slash.
pub(crate) fn join_url(base: &url::Url, path: &str) -> String {
    format!(
        "{}/{}",
        base.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// A conversation with a tool call and its result, shared by the providers' snapshot tests.
#[cfg(test)]
pub(crate) fn sample_request() -> ChatRequest {
    use serde_json::json;
    ChatRequest {
        system: "You are Alice's twin.".into(),
        messages: vec![
            Message::user("Save a note that the meeting is at 3pm."),
            Message::Assistant {
                content: "I'll write it down.".into(),
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "write_file".into(),
                    arguments: json!({"path": "notes/meeting.md", "content": "Meeting at 3pm"}),
                }],
            },
            Message::Tool {
                call_id: "call_1".into(),
                name: "write_file".into(),
                content: "Wrote 14 bytes to notes/meeting.md.".into(),
                is_error: false,
            },
            Message::assistant("Done: the note is in notes/meeting.md."),
            Message::user("Thanks! What's in notes/missing.md?"),
            Message::Assistant {
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_2".into(),
                    name: "read_file".into(),
                    arguments: json!({"path": "notes/missing.md"}),
                }],
            },
            Message::Tool {
                call_id: "call_2".into(),
                name: "read_file".into(),
                content: "Error: \"notes/missing.md\" does not exist".into(),
                is_error: true,
            },
        ],
        tools: vec![ToolSpec {
            name: "read_file".into(),
            description: "Read a text file of your home.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            }),
        }],
        max_tokens: 1024,
        model: None,
    }
}
