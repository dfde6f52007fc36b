//! The tools the model may call, all working on the owner's home.
//!
//! Every failure (bad arguments, unknown tool, a [`HomeError`]) becomes an error *result* the
//! model reads, never a failed turn: models recover well when told what was wrong.

mod files;
mod remember;
mod skills;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{message::ToolCall, provider::ToolSpec};
use crate::home::{Home, HomeError};

/// Longest tool output given to the model, in characters; more would crowd out the
/// conversation and cost tokens for little gain.
pub const MAX_OUTPUT_CHARS: usize = 20_000;

/// What a tool call produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    /// Text for the model.
    pub content: String,
    /// Whether the call failed.
    pub is_error: bool,
}

impl ToolOutput {
    fn ok(content: impl Into<String>) -> Self {
        Self {
            content: truncate(content.into()),
            is_error: false,
        }
    }

    fn error(message: impl std::fmt::Display) -> Self {
        Self {
            content: truncate(format!("Error: {message}")),
            is_error: true,
        }
    }
}

/// Where a call runs: the home and the room (named in commit messages).
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The owner's home.
    pub home: Arc<Home>,
    /// The room of the turn.
    pub room_id: String,
}

/// The specs of every tool, in a stable order.
pub fn specs() -> Vec<ToolSpec> {
    let mut specs = files::specs();
    specs.extend(skills::specs());
    specs.extend(remember::specs());
    specs
}

/// Runs one tool call.
pub async fn execute(ctx: &ToolContext, call: &ToolCall) -> ToolOutput {
    let args = &call.arguments;
    if let Value::String(raw) = args {
        return ToolOutput::error(format!(
            "the arguments of {} were not valid JSON ({}); send a JSON object",
            call.name,
            shorten(raw, 200)
        ));
    }
    let output = match call.name.as_str() {
        "read_file" => files::read_file(ctx, args).await,
        "write_file" => files::write_file(ctx, args).await,
        "edit_file" => files::edit_file(ctx, args).await,
        "list_files" => files::list_files(ctx, args).await,
        "search_files" => files::search_files(ctx, args).await,
        "load_skill" => skills::load_skill(ctx, args).await,
        "remember" => remember::remember(ctx, args).await,
        unknown => {
            let names: Vec<String> = specs().into_iter().map(|s| s.name).collect();
            Err(format!(
                "there is no tool called {unknown:?}; the tools are {}",
                names.join(", ")
            ))
        }
    };
    match output {
        Ok(text) => ToolOutput::ok(text),
        Err(message) => ToolOutput::error(message),
    }
}

/// What a tool body returns: text for the model, or an error message.
type ToolResult = Result<String, String>;

/// Reads the arguments of `tool`, saying which ones are expected when they don't fit.
fn parse_args<T: DeserializeOwned>(tool: &str, args: &Value, expected: &str) -> Result<T, String> {
    let args = if args.is_null() {
        Value::Object(Default::default())
    } else {
        args.clone()
    };
    serde_json::from_value(args)
        .map_err(|e| format!("bad arguments for {tool} ({e}); expected {expected}"))
}

/// Runs blocking home work off the async threads.
async fn blocking<T, F>(ctx: &ToolContext, work: F) -> Result<T, String>
where
    F: FnOnce(&Home) -> Result<T, HomeError> + Send + 'static,
    T: Send + 'static,
{
    let home = Arc::clone(&ctx.home);
    match tokio::task::spawn_blocking(move || work(&home)).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(join) => Err(format!("the tool stopped unexpectedly ({join})")),
    }
}

/// Records a change in the home's history. The change itself already happened, so a failed
/// commit is reported next to the success rather than as a failure of the tool.
async fn commit(ctx: &ToolContext, tool: &str, path: &str) -> Option<String> {
    let message = format!("{tool} {path} (room {})", ctx.room_id);
    match blocking(ctx, move |home| home.commit(&message)).await {
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(tool, path, %error, "could not commit the home");
            Some(format!(
                " (The change is saved but could not be versioned: {error}.)"
            ))
        }
    }
}

/// Cuts `text` to [`MAX_OUTPUT_CHARS`] with a note saying so.
fn truncate(text: String) -> String {
    match text.char_indices().nth(MAX_OUTPUT_CHARS) {
        Some((cut, _)) => {
            let rest = text[cut..].chars().count();
            format!(
                "{}\n\n[… output truncated: {rest} more characters not shown. Use search_files \
                 or a narrower path to see the rest.]",
                &text[..cut]
            )
        }
        None => text,
    }
}

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A JSON schema for an object with the given properties.
fn object_schema(properties: Value, required: &[&str]) -> Value {
    serde_json::json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
