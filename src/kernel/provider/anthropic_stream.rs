//! A streamed Messages answer: `message_start`, then per content block `content_block_start`,
//! `content_block_delta`s and `content_block_stop`, then `message_delta` (stop reason, output
//! tokens) and `message_stop`; `ping` and `error` may come at any time.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{WireUsage, stop_reason};
use crate::kernel::{
    message::ToolCall,
    provider::{
        ChatResponse, ProviderError,
        openai::parse_arguments,
        sse::{SseParser, error_event, status_of_error_kind},
    },
};

/// Reads a streamed Messages answer one event at a time (pure: no network).
#[derive(Debug, Default)]
pub struct StreamParser {
    url: String,
    model: String,
    content: String,
    /// Content blocks by their `index`.
    blocks: BTreeMap<u64, Block>,
    stop_reason: Option<String>,
    usage: Counters,
    done: bool,
}

#[derive(Debug)]
enum Block {
    Text,
    Tool {
        id: String,
        name: String,
        /// The input given in `content_block_start` (`{}` when it is streamed).
        input: Value,
        /// The `partial_json` pieces so far.
        json: String,
    },
    /// Thinking and other kinds, which carry nothing the room needs.
    Other,
}

/// Usage counters as they come, each from the latest event that had it.
#[derive(Debug, Default)]
struct Counters {
    seen: bool,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

impl Counters {
    fn update(&mut self, usage: &Value) {
        let field = |name: &str| usage.get(name).and_then(Value::as_u64);
        self.seen = true;
        self.input_tokens = field("input_tokens").or(self.input_tokens);
        self.output_tokens = field("output_tokens").or(self.output_tokens);
        self.cache_read_input_tokens =
            field("cache_read_input_tokens").or(self.cache_read_input_tokens);
        self.cache_creation_input_tokens =
            field("cache_creation_input_tokens").or(self.cache_creation_input_tokens);
    }

    fn wire(&self) -> Option<WireUsage> {
        self.seen.then(|| WireUsage {
            input_tokens: self.input_tokens.unwrap_or(0),
            output_tokens: self.output_tokens.unwrap_or(0),
            cache_read_input_tokens: self.cache_read_input_tokens,
            cache_creation_input_tokens: self.cache_creation_input_tokens,
        })
    }
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    index: u64,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    content_block: Option<Value>,
    #[serde(default)]
    delta: Option<Value>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

impl StreamParser {
    /// A parser for a stream from `url` (shown in errors) asking for `model`.
    pub fn new(url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            model: model.into(),
            ..Self::default()
        }
    }

    /// Reads one event named `name` (its data's `type` wins when they differ); returns the
    /// text it adds to the answer, if any.
    pub fn event(&mut self, name: &str, data: &str) -> Result<Option<String>, ProviderError> {
        if self.done || data.trim().is_empty() {
            return Ok(None);
        }
        let event: Event = serde_json::from_str(data).map_err(|e| {
            ProviderError::BadResponse(format!("a streamed event is not JSON ({e})"))
        })?;
        let field = |value: &Option<Value>, name: &str| {
            value
                .as_ref()
                .and_then(|v| v.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        match event.kind.as_deref().unwrap_or(name) {
            "message_start" => {
                if let Some(usage) = event.message.as_ref().and_then(|m| m.get("usage")) {
                    self.usage.update(usage);
                }
            }
            "content_block_start" => {
                let block = event.content_block.as_ref();
                let text = field(&event.content_block, "text");
                let new = match field(&event.content_block, "type").as_deref() {
                    Some("text") => Block::Text,
                    Some("tool_use") => {
                        let (Some(id), Some(name)) = (
                            field(&event.content_block, "id"),
                            field(&event.content_block, "name"),
                        ) else {
                            return Err(ProviderError::BadResponse(
                                "a tool_use block lacks id or name".into(),
                            ));
                        };
                        let input = block.and_then(|b| b.get("input")).cloned();
                        Block::Tool {
                            id,
                            name,
                            input: input.unwrap_or_else(|| json!({})),
                            json: String::new(),
                        }
                    }
                    _ => Block::Other,
                };
                let is_text = matches!(new, Block::Text);
                self.blocks.insert(event.index, new);
                if is_text {
                    return Ok(self.text(text));
                }
            }
            "content_block_delta" => {
                let piece = |name| field(&event.delta, name);
                match (piece("type").as_deref(), self.blocks.get_mut(&event.index)) {
                    (Some("text_delta"), Some(Block::Text)) => return Ok(self.text(piece("text"))),
                    (Some("input_json_delta"), Some(Block::Tool { json, .. })) => {
                        json.push_str(&piece("partial_json").unwrap_or_default());
                    }
                    (Some("text_delta" | "input_json_delta"), _) => {
                        return Err(ProviderError::BadResponse(format!(
                            "a delta for content block {} does not match its kind",
                            event.index
                        )));
                    }
                    // thinking_delta, signature_delta, citations: nothing for the room.
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = field(&event.delta, "stop_reason") {
                    self.stop_reason = Some(reason);
                }
                if let Some(usage) = &event.usage {
                    self.usage.update(usage);
                }
            }
            "message_stop" => self.done = true,
            "error" => {
                let kind = field(&event.error, "type");
                let status = kind.as_deref().and_then(status_of_error_kind);
                // Unknown errors inside a stream are taken for server errors.
                return Err(error_event(
                    status.unwrap_or(500),
                    data,
                    &self.url,
                    &self.model,
                ));
            }
            // ping, content_block_stop, and event kinds added later.
            _ => {}
        }
        Ok(None)
    }

    /// Whether `message_stop` came.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The whole answer, as [`super::parse_response`] gives it for the same message.
    pub fn finish(self) -> Result<ChatResponse, ProviderError> {
        if !self.done && self.stop_reason.is_none() {
            return Err(ProviderError::BadResponse(
                "the stream ended early, before the answer was finished".into(),
            ));
        }
        let tool_calls = self
            .blocks
            .into_values()
            .filter_map(|block| match block {
                Block::Tool {
                    id,
                    name,
                    input,
                    json,
                } => Some(ToolCall {
                    id,
                    name,
                    arguments: if json.trim().is_empty() {
                        input
                    } else {
                        parse_arguments(Value::String(json))
                    },
                }),
                Block::Text | Block::Other => None,
            })
            .collect();
        Ok(ChatResponse {
            content: self.content,
            tool_calls,
            stop_reason: stop_reason(self.stop_reason.as_deref()),
            usage: self.usage.wire().as_ref().map(WireUsage::usage),
        })
    }

    fn text(&mut self, text: Option<String>) -> Option<String> {
        let text = text.filter(|t| !t.is_empty())?;
        self.content.push_str(&text);
        Some(text)
    }
}

impl SseParser for StreamParser {
    fn on_event(&mut self, name: &str, data: &str) -> Result<Option<String>, ProviderError> {
        self.event(name, data)
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn into_response(self) -> Result<ChatResponse, ProviderError> {
        self.finish()
    }

    fn parse_whole(raw: &[u8]) -> Result<ChatResponse, ProviderError> {
        super::parse_response(raw)
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
#[path = "anthropic_stream_tests.rs"]
mod tests;
