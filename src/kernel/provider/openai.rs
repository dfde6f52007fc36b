//! OpenAI-compatible Chat Completions: `POST {base}/chat/completions`.
//!
//! Spoken by OpenAI and by local servers (Ollama, vLLM, llama.cpp), so parsing is lenient about
//! the places where those servers differ (content as parts, arguments as objects, missing ids).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

pub use self::stream::StreamParser;
use super::{
    ChatRequest, ChatResponse, Provider, ProviderError, Settings, StopReason, TextSink, Usage,
    display_url, join_url,
    retry::with_retries,
    sse,
    transport::{self, Endpoint},
};
use crate::kernel::message::{Message, ToolCall};

#[path = "openai_stream.rs"]
mod stream;

/// The public OpenAI API.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// An OpenAI-compatible endpoint.
#[derive(Debug)]
pub struct OpenAi {
    settings: Settings,
    client: reqwest::Client,
}

impl OpenAi {
    /// A provider for `settings`.
    pub fn new(settings: Settings) -> Result<Self, reqwest::Error> {
        let client = transport::client(settings.timeout)?;
        Ok(Self { settings, client })
    }

    fn endpoint(&self, path: &str) -> Endpoint {
        Endpoint {
            url: join_url(&self.settings.base_url, path),
            shown: join_url(&url_for_display(&self.settings.base_url), path),
        }
    }

    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.settings.api_key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        }
    }
}

fn url_for_display(base: &url::Url) -> url::Url {
    url::Url::parse(&display_url(base)).unwrap_or_else(|_| base.clone())
}

/// Whether `base` is OpenAI's own API, which wants `max_completion_tokens` (its reasoning
/// models reject `max_tokens`), while compatible servers only know `max_tokens`.
fn is_official(base: &url::Url) -> bool {
    base.host_str() == Some("api.openai.com")
}

#[async_trait]
impl Provider for OpenAi {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let endpoint = self.endpoint("chat/completions");
        let body = build_body(
            request,
            &self.settings.model,
            is_official(&self.settings.base_url),
            false,
        );
        let settings = &self.settings;
        let model = request.model_or(&settings.model);
        let raw = with_retries(&settings.retry, "chat completion", || {
            let http_request = self.authorize(self.client.post(&endpoint.url)).json(&body);
            transport::send(http_request, &endpoint, settings.timeout, model)
        })
        .await?;
        parse_response(&raw)
    }

    async fn stream(
        &self,
        request: &ChatRequest,
        sink: &dyn TextSink,
    ) -> Result<ChatResponse, ProviderError> {
        let endpoint = self.endpoint("chat/completions");
        let body = build_body(
            request,
            &self.settings.model,
            is_official(&self.settings.base_url),
            true,
        );
        let model = request.model_or(&self.settings.model);
        sse::run(
            &self.settings,
            "streamed chat completion",
            &endpoint,
            model,
            sink,
            || self.authorize(self.client.post(&endpoint.url)).json(&body),
            || StreamParser::new(&endpoint.shown, model),
        )
        .await
    }

    async fn check(&self) -> Result<String, ProviderError> {
        let endpoint = self.endpoint("models");
        let request = self.authorize(self.client.get(&endpoint.url));
        let raw = transport::send(
            request,
            &endpoint,
            self.settings.timeout,
            &self.settings.model,
        )
        .await?;
        let models = parse_model_list(&raw)?;
        let model = &self.settings.model;
        let base = display_url(&self.settings.base_url);
        if models.is_empty() || models.iter().any(|m| m == model) {
            Ok(format!("{base} answers and model {model} is available"))
        } else {
            let shown: Vec<&str> = models.iter().take(8).map(String::as_str).collect();
            Ok(format!(
                "{base} answers, but model {model} is not in its list ({}); if turns fail, \
                 check llm.model",
                shown.join(", ")
            ))
        }
    }

    fn describe(&self) -> String {
        format!(
            "openai {} at {}",
            self.settings.model,
            display_url(&self.settings.base_url)
        )
    }
}

/// The JSON body of a chat completion request, for `model` unless the request names its own.
pub fn build_body(request: &ChatRequest, model: &str, official: bool, stream: bool) -> Value {
    let model = request.model_or(model);
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if !request.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.system}));
    }
    messages.extend(request.messages.iter().map(wire_message));
    let mut body = json!({"model": model, "messages": messages});
    let limit_key = if official {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    body[limit_key] = json!(request.max_tokens);
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters,
                }})
            })
            .collect();
        body["tools"] = Value::Array(tools);
        body["tool_choice"] = json!("auto");
    }
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

fn wire_message(message: &Message) -> Value {
    match message {
        Message::User { content, images } if !images.is_empty() => {
            let mut parts = vec![json!({"type": "text", "text": content})];
            parts.extend(
                images.iter().map(
                    |image| json!({"type": "image_url", "image_url": {"url": image.data_url()}}),
                ),
            );
            json!({"role": "user", "content": parts})
        }
        Message::User { content, .. } | Message::Note { content } => {
            json!({"role": "user", "content": content})
        }
        Message::Assistant {
            content,
            tool_calls,
        } if tool_calls.is_empty() => {
            json!({"role": "assistant", "content": content})
        }
        Message::Assistant {
            content,
            tool_calls,
        } => {
            let calls: Vec<Value> = tool_calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function", "function": {
                        "name": c.name, "arguments": arguments_text(&c.arguments),
                    }})
                })
                .collect();
            // OpenAI wants null, not "", next to tool calls.
            let content = if content.is_empty() {
                Value::Null
            } else {
                json!(content)
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
        Message::Tool {
            call_id, content, ..
        } => {
            json!({"role": "tool", "tool_call_id": call_id, "content": content})
        }
    }
}

/// Arguments go over the wire as a JSON string. A string value holds arguments the model sent
/// that were not valid JSON; they are echoed back as sent so the model sees its own mistake.
fn arguments_text(arguments: &Value) -> String {
    match arguments {
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    }
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Value,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl WireUsage {
    fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens,
            output_tokens: self.completion_tokens,
            cache_read_tokens: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            cache_write_tokens: 0,
        }
    }
}

/// Parses the body of a successful chat completion.
pub fn parse_response(raw: &[u8]) -> Result<ChatResponse, ProviderError> {
    let completion: Completion = serde_json::from_slice(raw)
        .map_err(|e| ProviderError::BadResponse(format!("not a chat completion ({e})")))?;
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| ProviderError::BadResponse("the completion has no choices".into()))?;
    let mut content = content_text(&choice.message.content);
    if content.is_empty() {
        content = choice.message.refusal.unwrap_or_default();
    }
    let tool_calls: Vec<ToolCall> = choice
        .message
        .tool_calls
        .into_iter()
        .enumerate()
        .map(|(i, call)| ToolCall {
            id: call
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| format!("call_{i}")),
            name: call.function.name,
            arguments: parse_arguments(call.function.arguments),
        })
        .collect();
    let stop_reason = stop_reason(choice.finish_reason.as_deref(), !tool_calls.is_empty());
    let usage = completion.usage.as_ref().map(WireUsage::usage);
    Ok(ChatResponse {
        content,
        tool_calls,
        stop_reason,
        usage,
    })
}

/// Maps `finish_reason`; `has_tools` tells whether the answer has tool calls.
fn stop_reason(finish_reason: Option<&str>, has_tools: bool) -> StopReason {
    match finish_reason {
        Some("tool_calls" | "function_call") => StopReason::ToolUse,
        // Some servers say "stop" even when they return tool calls.
        _ if has_tools => StopReason::ToolUse,
        Some("stop") | None => StopReason::EndTurn,
        Some("length") => StopReason::MaxTokens,
        Some(other) => StopReason::Other(other.to_owned()),
    }
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// Arguments arrive as a JSON string (OpenAI) or an object (some local servers).
pub(crate) fn parse_arguments(arguments: Value) -> Value {
    match arguments {
        Value::String(raw) if raw.trim().is_empty() => json!({}),
        Value::String(raw) => serde_json::from_str(&raw).unwrap_or(Value::String(raw)),
        Value::Null => json!({}),
        other => other,
    }
}

fn parse_model_list(raw: &[u8]) -> Result<Vec<String>, ProviderError> {
    let list: Value = serde_json::from_slice(raw)
        .map_err(|e| ProviderError::BadResponse(format!("the model list is not JSON ({e})")))?;
    let data = list
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::BadResponse("the model list has no `data` array".into()))?;
    Ok(data
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str))
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
#[path = "openai_tests.rs"]
mod tests;
