//! A streamed chat completion: `data: {chat.completion.chunk}` events, then `data: [DONE]`.
//!
//! Text comes in `choices[0].delta.content`; each tool call in `delta.tool_calls[]` pieces
//! keyed by `index` (the first piece has `id` and `function.name`, later ones add to
//! `function.arguments`); `finish_reason` in the last chunk with a choice; and, when asked
//! for with `stream_options.include_usage`, the usage in a final chunk with no choices.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{WireUsage, content_text, parse_arguments, stop_reason};
use crate::kernel::{
    message::ToolCall,
    provider::{
        ChatResponse, ProviderError, Usage,
        sse::{SseParser, error_event, status_of_error_kind},
    },
};

/// Reads a streamed chat completion one event at a time (pure: no network).
#[derive(Debug, Default)]
pub struct StreamParser {
    url: String,
    model: String,
    content: String,
    refusal: String,
    /// Tool calls by their `index`.
    calls: BTreeMap<u64, PartialCall>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    /// Whether any chunk had a choice.
    choices_seen: bool,
    done: bool,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: Option<String>,
    name: String,
    arguments: String,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Value,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<DeltaCall>>,
}

#[derive(Deserialize)]
struct DeltaCall {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<DeltaFunction>,
}

#[derive(Deserialize)]
struct DeltaFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Value,
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

    /// Reads the data of one event; returns the text it adds to the answer, if any.
    pub fn event(&mut self, data: &str) -> Result<Option<String>, ProviderError> {
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(None);
        }
        if self.done || data.is_empty() {
            return Ok(None);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
            ProviderError::BadResponse(format!("a streamed chunk is not JSON ({e})"))
        })?;
        if let Some(error) = chunk.error.filter(|e| !e.is_null()) {
            return Err(self.error(&error, data));
        }
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.usage());
        }
        let mut text = String::new();
        // One answer is asked for (`n` = 1): choice 0.
        for choice in chunk.choices.into_iter().flatten() {
            if choice.index != 0 {
                continue;
            }
            self.choices_seen = true;
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason);
            }
            if let Some(delta) = choice.delta {
                text.push_str(&self.delta(delta));
            }
        }
        Ok((!text.is_empty()).then_some(text))
    }

    /// Whether `data: [DONE]` came.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The whole answer, as [`super::parse_response`] gives it for the same completion.
    pub fn finish(self) -> Result<ChatResponse, ProviderError> {
        if !self.done && self.finish_reason.is_none() {
            return Err(ProviderError::BadResponse(
                "the stream ended early, before the answer was finished".into(),
            ));
        }
        if !self.choices_seen {
            return Err(ProviderError::BadResponse(
                "the streamed completion has no choices".into(),
            ));
        }
        let tool_calls: Vec<ToolCall> = self
            .calls
            .into_values()
            .enumerate()
            .map(|(i, call)| ToolCall {
                id: call
                    .id
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| format!("call_{i}")),
                name: call.name,
                arguments: parse_arguments(Value::String(call.arguments)),
            })
            .collect();
        let content = if self.content.is_empty() {
            self.refusal
        } else {
            self.content
        };
        Ok(ChatResponse {
            content,
            stop_reason: stop_reason(self.finish_reason.as_deref(), !tool_calls.is_empty()),
            tool_calls,
            usage: self.usage,
        })
    }

    /// Takes one delta in; returns its text.
    fn delta(&mut self, delta: Delta) -> String {
        let mut text = content_text(&delta.content);
        self.content.push_str(&text);
        if let Some(refusal) = delta.refusal.filter(|r| !r.is_empty()) {
            self.refusal.push_str(&refusal);
            text.push_str(&refusal);
        }
        for call in delta.tool_calls.into_iter().flatten() {
            // Without an index (some local servers), a piece with an id starts a new call.
            let next = self.calls.keys().next_back().map_or(0, |last| last + 1);
            let index = call.index.unwrap_or(match call.id {
                Some(_) => next,
                None => next.saturating_sub(1),
            });
            let entry = self.calls.entry(index).or_default();
            if let Some(id) = call.id.filter(|id| !id.is_empty()) {
                entry.id.get_or_insert(id);
            }
            let Some(function) = call.function else {
                continue;
            };
            if let Some(name) = function.name.filter(|n| !n.is_empty())
                && entry.name.is_empty()
            {
                entry.name = name;
            }
            match function.arguments {
                Value::String(piece) => entry.arguments.push_str(&piece),
                Value::Null => {}
                // Some servers send the arguments as a whole object.
                whole => entry.arguments = whole.to_string(),
            }
        }
        text
    }

    /// An `error` object sent in the stream, as the error status it stands for.
    fn error(&self, error: &Value, data: &str) -> ProviderError {
        let kind = |name: &str| {
            error
                .get(name)
                .and_then(Value::as_str)
                .and_then(status_of_error_kind)
        };
        // Unknown errors inside a stream are taken for server errors.
        let status = error
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| (400..600).contains(c))
            .or_else(|| kind("code"))
            .or_else(|| kind("type"))
            .unwrap_or(500);
        error_event(status, data, &self.url, &self.model)
    }
}

impl SseParser for StreamParser {
    fn on_event(&mut self, _name: &str, data: &str) -> Result<Option<String>, ProviderError> {
        self.event(data)
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
#[path = "openai_stream_tests.rs"]
mod tests;
