//! The kernel: an agent loop of a language model with tools over the owner's home.
//!
//! SKELETON: signatures are the contract; bodies are filled in by the kernel work item.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{config::LlmConfig, home::Home};

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

/// Input of one turn.
#[derive(Debug, Clone)]
pub struct Turn {
    /// Room the turn happens in (named in commit messages).
    pub room_id: String,
    /// Earlier messages of the session, oldest first.
    pub history: Vec<Message>,
    /// What the person said now.
    pub input: String,
}

/// Result of one turn.
#[derive(Debug, Clone)]
pub struct TurnOutcome {
    /// The reply to post, in Markdown.
    pub reply: String,
    /// Messages this turn added to the session (the user's first), to be stored.
    pub messages: Vec<Message>,
}

/// A turn failed; [`KernelError::user_message`] is what the room is told.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The model provider kept failing.
    #[error("model provider failed: {0}")]
    Provider(String),
}

impl KernelError {
    /// A short, clear message for the room.
    pub fn user_message(&self) -> String {
        todo!()
    }
}

/// The agent loop.
#[derive(Debug)]
pub struct Kernel {}

impl Kernel {
    /// Builds the kernel; reads the API key from the variable named by `llm.api_key_env`.
    /// With no key (or provider `none`) turns answer with a how-to-configure notice.
    pub fn from_config(config: &LlmConfig) -> Result<Self, KernelError> {
        let _ = config;
        Ok(Self {})
    }
    /// One line describing the model in use (no secrets).
    pub fn describe(&self) -> String {
        todo!()
    }
    /// Checks that the endpoint answers and the key is accepted (for `doctor`).
    pub async fn check_endpoint(&self) -> Result<String, KernelError> {
        todo!()
    }
    /// Runs one turn.
    pub async fn run_turn(&self, home: Arc<Home>, turn: Turn) -> Result<TurnOutcome, KernelError> {
        let _ = (home, turn);
        todo!()
    }
}
