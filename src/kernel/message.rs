//! Provider-neutral conversation messages, as stored in sessions and sent to any provider.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// A tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Provider-assigned id, echoed in the result.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments as JSON.
    pub arguments: serde_json::Value,
}

/// One message of a conversation, in a provider-neutral form (stored in sessions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// What a person said.
    User {
        /// Text.
        content: String,
        /// Images sent with it, for this request only: a turn's stored messages never keep
        /// them (the text says an image was sent).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        images: Vec<ImageInput>,
    },
    /// What matrix-os tells the model about this moment (the time, meetings waiting for the
    /// owner), placed just before the person's message it goes with. It is kept in the
    /// session like any message, so that every later request starts with the earlier ones
    /// byte for byte (prompt caching); it travels as a user message.
    Note {
        /// Text.
        content: String,
    },
    /// What the model said, possibly asking for tools.
    Assistant {
        /// Text (may be empty when only tools are called).
        content: String,
        /// Tool calls.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// A tool's result.
    Tool {
        /// The call this answers.
        call_id: String,
        /// Tool name.
        name: String,
        /// Result text.
        content: String,
        /// Whether the tool failed.
        #[serde(default)]
        is_error: bool,
    },
}

/// An image given to the model (vision input).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInput {
    /// `image/jpeg`, `image/png`, `image/gif` or `image/webp`.
    pub mime: String,
    /// The image, standard base64.
    pub data: String,
}

impl std::fmt::Debug for ImageInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageInput")
            .field("mime", &self.mime)
            .field("base64_chars", &self.data.len())
            .finish()
    }
}

impl ImageInput {
    /// An image of type `mime` with the bytes `bytes`.
    pub fn new(mime: impl Into<String>, bytes: &[u8]) -> Self {
        use base64::Engine as _;
        Self {
            mime: mime.into(),
            data: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// As a `data:` URL (OpenAI's `image_url`).
    pub fn data_url(&self) -> String {
        format!("data:{};base64,{}", self.mime, self.data)
    }
}

impl Message {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::User {
            content: content.into(),
            images: Vec::new(),
        }
    }

    /// This message without its images (as it is kept in a session).
    pub fn without_images(self) -> Self {
        match self {
            Self::User { content, .. } => Self::User {
                content,
                images: Vec::new(),
            },
            other => other,
        }
    }

    /// A note from matrix-os to the model.
    pub fn note(content: impl Into<String>) -> Self {
        Self::Note {
            content: content.into(),
        }
    }

    /// An assistant message without tool calls.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::Assistant {
            content: content.into(),
            tool_calls: Vec::new(),
        }
    }
}

/// Text of a tool result that a stored conversation lost (a turn cut short by a crash).
const MISSING_RESULT: &str = "Error: this tool call was interrupted and has no result.";

/// Makes stored history acceptable to every provider.
///
/// Sessions are cut to their newest messages and a turn can die between a tool call and its
/// result; both providers reject such conversations outright (Anthropic wants a user message
/// first, both want every tool call answered right after it and no unanswered results). So:
/// anything before the first user message is dropped, results that answer no preceding call
/// are dropped, and calls left without a result get an error result.
pub(crate) fn sanitize(history: Vec<Message>) -> Vec<Message> {
    let mut out = Vec::with_capacity(history.len());
    // Calls of the latest assistant message that still wait for their result.
    let mut pending: Vec<ToolCall> = Vec::new();
    let mut answered: HashSet<String> = HashSet::new();
    let mut seen_user = false;

    for message in history {
        match message {
            Message::Tool { ref call_id, .. } => {
                let expected = pending.iter().any(|c| &c.id == call_id);
                if expected && answered.insert(call_id.clone()) {
                    out.push(message);
                }
            }
            other => {
                close_pending(&mut out, &mut pending, &mut answered);
                if matches!(other, Message::User { .. } | Message::Note { .. }) {
                    seen_user = true;
                }
                if !seen_user {
                    continue;
                }
                if let Message::Assistant { tool_calls, .. } = &other {
                    pending = tool_calls.clone();
                }
                out.push(other);
            }
        }
    }
    close_pending(&mut out, &mut pending, &mut answered);
    out
}

/// Reduces history to what people said and the model answered, for a turn with someone other
/// than the owner: tool calls and tool results are dropped, since those of the owner's turns
/// in the same room may hold private files. Assistant messages left without text go too.
pub(crate) fn text_only(history: Vec<Message>) -> Vec<Message> {
    history
        .into_iter()
        .filter_map(|message| match message {
            Message::User { .. } | Message::Note { .. } => Some(message),
            Message::Assistant { content, .. } if !content.trim().is_empty() => {
                Some(Message::assistant(content))
            }
            Message::Assistant { .. } | Message::Tool { .. } => None,
        })
        .collect()
}

fn close_pending(
    out: &mut Vec<Message>,
    pending: &mut Vec<ToolCall>,
    answered: &mut HashSet<String>,
) {
    for call in pending.drain(..) {
        if !answered.contains(&call.id) {
            out.push(Message::Tool {
                call_id: call.id,
                name: call.name,
                content: MISSING_RESULT.to_owned(),
                is_error: true,
            });
        }
    }
    answered.clear();
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(id: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "read_file".into(),
            arguments: json!({"path": "a.md"}),
        }
    }

    fn result(id: &str) -> Message {
        Message::Tool {
            call_id: id.into(),
            name: "read_file".into(),
            content: "x".into(),
            is_error: false,
        }
    }

    #[test]
    fn history_is_cut_to_start_at_a_user_message() {
        let history = vec![
            Message::assistant("old answer"),
            result("gone"),
            Message::user("hi"),
            Message::assistant("hello"),
        ];
        assert_eq!(
            sanitize(history),
            vec![Message::user("hi"), Message::assistant("hello")]
        );
    }

    #[test]
    fn orphan_results_are_dropped_and_missing_results_filled_in() {
        let history = vec![
            Message::user("hi"),
            Message::Assistant {
                content: String::new(),
                tool_calls: vec![call("a"), call("b")],
            },
            result("a"),
            result("zzz"),
            Message::user("still there?"),
        ];
        let clean = sanitize(history);
        assert_eq!(clean.len(), 5);
        assert_eq!(clean[2], result("a"));
        assert!(
            matches!(&clean[3], Message::Tool { call_id, is_error: true, .. } if call_id == "b")
        );
        assert_eq!(clean[4], Message::user("still there?"));
    }

    #[test]
    fn a_well_formed_history_is_kept_as_is() {
        let history = vec![
            Message::user("hi"),
            Message::Assistant {
                content: "let me look".into(),
                tool_calls: vec![call("a")],
            },
            result("a"),
            Message::assistant("done"),
        ];
        assert_eq!(sanitize(history.clone()), history);
    }

    #[test]
    fn text_only_history_keeps_words_and_drops_tools() {
        let history = vec![
            Message::user("what's in my diary?"),
            Message::Assistant {
                content: "Let me look.".into(),
                tool_calls: vec![call("a")],
            },
            result("a"),
            Message::Assistant {
                content: " ".into(),
                tool_calls: vec![call("b")],
            },
            result("b"),
            Message::assistant("Nothing today."),
            Message::user("thanks"),
        ];
        assert_eq!(
            text_only(history),
            vec![
                Message::user("what's in my diary?"),
                Message::assistant("Let me look."),
                Message::assistant("Nothing today."),
                Message::user("thanks"),
            ]
        );
    }

    #[test]
    fn messages_serialize_with_a_role_tag() {
        let messages = vec![
            Message::user("hi"),
            Message::Assistant {
                content: String::new(),
                tool_calls: vec![call("a")],
            },
            result("a"),
        ];
        insta::assert_json_snapshot!(messages);
    }
}
