//! Anthropic Messages: `POST {base}/v1/messages`.

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

#[path = "anthropic_stream.rs"]
mod stream;

/// The public Anthropic API.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// The API version this code speaks.
pub const API_VERSION: &str = "2023-06-01";

/// An Anthropic Messages endpoint.
#[derive(Debug)]
pub struct Anthropic {
    settings: Settings,
    client: reqwest::Client,
}

impl Anthropic {
    /// A provider for `settings`.
    pub fn new(settings: Settings) -> Result<Self, reqwest::Error> {
        let client = transport::client(settings.timeout)?;
        Ok(Self { settings, client })
    }

    fn endpoint(&self, path: &str) -> Endpoint {
        let shown = url::Url::parse(&display_url(&self.settings.base_url))
            .unwrap_or_else(|_| self.settings.base_url.clone());
        Endpoint {
            url: join_url(&self.settings.base_url, path),
            shown: join_url(&shown, path),
        }
    }

    fn headers(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let request = request.header("anthropic-version", API_VERSION);
        match &self.settings.api_key {
            Some(key) => request.header("x-api-key", key.expose()),
            None => request,
        }
    }
}

#[async_trait]
impl Provider for Anthropic {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let endpoint = self.endpoint("v1/messages");
        let body = build_body(request, &self.settings.model, false);
        let settings = &self.settings;
        let model = request.model_or(&settings.model);
        let raw = with_retries(&settings.retry, "messages request", || {
            let http_request = self.headers(self.client.post(&endpoint.url)).json(&body);
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
        let endpoint = self.endpoint("v1/messages");
        let body = build_body(request, &self.settings.model, true);
        let model = request.model_or(&self.settings.model);
        sse::run(
            &self.settings,
            "streamed messages request",
            &endpoint,
            model,
            sink,
            || self.headers(self.client.post(&endpoint.url)).json(&body),
            || StreamParser::new(&endpoint.shown, model),
        )
        .await
    }

    async fn check(&self) -> Result<String, ProviderError> {
        let endpoint = self.endpoint("v1/models");
        let request = self.headers(self.client.get(&endpoint.url));
        let raw = transport::send(
            request,
            &endpoint,
            self.settings.timeout,
            &self.settings.model,
        )
        .await?;
        let list: Value = serde_json::from_slice(&raw)
            .map_err(|e| ProviderError::BadResponse(format!("the model list is not JSON ({e})")))?;
        if list.get("data").and_then(Value::as_array).is_none() {
            return Err(ProviderError::BadResponse(
                "the model list has no `data` array".into(),
            ));
        }
        Ok(format!(
            "{} answers and accepts the key (model {})",
            display_url(&self.settings.base_url),
            self.settings.model
        ))
    }

    fn describe(&self) -> String {
        format!(
            "anthropic {} at {}",
            self.settings.model,
            display_url(&self.settings.base_url)
        )
    }
}

/// The prompt cache marker: everything up to and including the block that carries it is
/// cached (for five minutes, renewed by each hit).
fn cache_marker() -> Value {
    json!({"type": "ephemeral"})
}

/// The JSON body of a messages request, for `model` unless the request names its own.
///
/// Two prompt cache breakpoints: after the system prompt (tools and system, the same for
/// every request of a twin), and on the last block of the conversation, so that the next
/// request, which starts with this one byte for byte, reads all of it from the cache.
pub fn build_body(request: &ChatRequest, model: &str, stream: bool) -> Value {
    let model = request.model_or(model);
    let mut messages = wire_messages(&request.messages);
    if let Some(block) = messages
        .last_mut()
        .and_then(|m| m.get_mut("content"))
        .and_then(Value::as_array_mut)
        .and_then(|blocks| blocks.last_mut())
    {
        block["cache_control"] = cache_marker();
    }
    let mut body = json!({
        "model": model,
        "max_tokens": request.max_tokens,
        "messages": messages,
    });
    if !request.system.is_empty() {
        body["system"] = json!([
            {"type": "text", "text": request.system, "cache_control": cache_marker()}
        ]);
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({"name": t.name, "description": t.description, "input_schema": t.parameters})
            })
            .collect();
        body["tools"] = Value::Array(tools);
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

/// Converts messages to content blocks, merging neighbours of the same role: the API wants
/// user and assistant to alternate, and tool results travel as user messages.
fn wire_messages(messages: &[Message]) -> Vec<Value> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in messages {
        let (role, blocks) = match message {
            Message::User { content, images } => {
                // Images first, then the words about them, as Anthropic recommends.
                let mut blocks: Vec<Value> = images
                    .iter()
                    .map(|image| {
                        json!({"type": "image", "source": {
                            "type": "base64", "media_type": image.mime, "data": image.data,
                        }})
                    })
                    .collect();
                blocks.push(text_block(content, "(empty message)"));
                ("user", blocks)
            }
            Message::Note { content } => ("user", vec![text_block(content, "(empty message)")]),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                let mut blocks = Vec::new();
                if !content.trim().is_empty() {
                    blocks.push(json!({"type": "text", "text": content}));
                }
                blocks.extend(tool_calls.iter().map(|c| {
                    // `input` must be an object; arguments that were not valid JSON are kept
                    // visible to the model rather than silently dropped.
                    let input = match &c.arguments {
                        Value::Object(_) => c.arguments.clone(),
                        Value::String(raw) => json!({"_unparsed_arguments": raw}),
                        _ => json!({}),
                    };
                    json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input})
                }));
                if blocks.is_empty() {
                    blocks.push(text_block("", "(no answer)"));
                }
                ("assistant", blocks)
            }
            Message::Tool {
                call_id,
                content,
                is_error,
                ..
            } => {
                let mut block =
                    json!({"type": "tool_result", "tool_use_id": call_id, "content": content});
                if *is_error {
                    block["is_error"] = json!(true);
                }
                ("user", vec![block])
            }
        };
        match out.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    out.into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

/// The API rejects empty text blocks.
fn text_block(text: &str, placeholder: &str) -> Value {
    let text = if text.trim().is_empty() {
        placeholder
    } else {
        text
    };
    json!({"type": "text", "text": text})
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Vec<Value>,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Anthropic counts cached input apart from `input_tokens`; [`Usage`] adds them up.
    fn usage(&self) -> Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let write = self.cache_creation_input_tokens.unwrap_or(0);
        Usage {
            input_tokens: self.input_tokens.saturating_add(read).saturating_add(write),
            output_tokens: self.output_tokens,
            cache_read_tokens: read,
            cache_write_tokens: write,
        }
    }
}

/// Parses the body of a successful messages request.
pub fn parse_response(raw: &[u8]) -> Result<ChatResponse, ProviderError> {
    let message: WireMessage = serde_json::from_slice(raw)
        .map_err(|e| ProviderError::BadResponse(format!("not a Messages API answer ({e})")))?;
    let mut content = String::new();
    let mut tool_calls = Vec::new();
    for block in message.content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(text) = block.get("text").and_then(Value::as_str) {
                    content.push_str(text);
                }
            }
            Some("tool_use") => {
                let field = |name: &str| block.get(name).and_then(Value::as_str).map(str::to_owned);
                let (Some(id), Some(name)) = (field("id"), field("name")) else {
                    return Err(ProviderError::BadResponse(
                        "a tool_use block lacks id or name".into(),
                    ));
                };
                let arguments = block.get("input").cloned().unwrap_or_else(|| json!({}));
                tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments,
                });
            }
            // Thinking and other block kinds carry nothing the room needs.
            _ => {}
        }
    }
    let usage = message.usage.as_ref().map(WireUsage::usage);
    Ok(ChatResponse {
        content,
        tool_calls,
        stop_reason: stop_reason(message.stop_reason.as_deref()),
        usage,
    })
}

/// Maps `stop_reason`.
fn stop_reason(reason: Option<&str>) -> StopReason {
    match reason {
        Some("end_turn" | "stop_sequence") | None => StopReason::EndTurn,
        Some("tool_use") => StopReason::ToolUse,
        Some("max_tokens") => StopReason::MaxTokens,
        Some(other) => StopReason::Other(other.to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
#[path = "anthropic_tests.rs"]
mod tests;
