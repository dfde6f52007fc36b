//! The tools the model may call, all working on the owner's home.
//!
//! Which tools a turn gets depends on its [`Audience`] and the room's restriction
//! ([`specs_for`]); [`execute`] enforces the same set on every call, so a tool the model was
//! not offered never runs. A public audience only reads `system/public/`.
//!
//! Every failure (bad arguments, unknown tool, a [`HomeError`]) becomes an error *result* the
//! model reads, never a failed turn: models recover well when told what was wrong.

mod files;
mod meetings;
mod remember;
mod skills;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Audience, message::ToolCall, provider::ToolSpec};
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

/// Where a call runs: the home, the room (named in commit messages), and who the turn is for,
/// which decides the tools that run ([`specs_for`]); [`execute`] checks it on every call.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The owner's home.
    pub home: Arc<Home>,
    /// The room of the turn.
    pub room_id: String,
    /// Who addresses the twin: a public audience only gets tools reading `system/public/`.
    pub audience: Audience,
    /// The room's restriction (tool names) on top of what the audience allows; `None` adds
    /// none.
    pub allowed_tools: Option<Vec<String>>,
    /// Requests the turn leaves for the room session (meetings to negotiate).
    pub requests: Arc<std::sync::Mutex<Vec<super::ToolRequest>>>,
}

impl ToolContext {
    /// A context of the owner with every tool.
    pub fn owner(home: Arc<Home>, room_id: impl Into<String>) -> Self {
        Self {
            home,
            room_id: room_id.into(),
            audience: Audience::Owner,
            allowed_tools: None,
            requests: Arc::default(),
        }
    }

    /// Records a request for the room session.
    fn record(&self, action: super::ToolRequest) -> Result<(), String> {
        self.requests
            .lock()
            .map(|mut requests| requests.push(action))
            .map_err(|_| "internal error: the request could not be recorded".to_owned())
    }

    /// Whether the tool called `name` is offered in this context.
    pub fn offers(&self, name: &str) -> bool {
        offered(&self.audience, self.allowed_tools.as_deref(), name)
    }
}

/// Names of every tool, in spec order.
const OWNER_TOOLS: [&str; 10] = [
    "read_file",
    "write_file",
    "edit_file",
    "list_files",
    "search_files",
    "load_skill",
    "remember",
    "propose_meeting",
    "cancel_meeting",
    "answer_meeting",
];

/// Names of the tools a public audience gets (each confined to `system/public/`).
const PUBLIC_TOOLS: [&str; 3] = ["read_file", "list_files", "search_files"];

/// The specs of every tool of the owner, in a stable order.
pub fn specs() -> Vec<ToolSpec> {
    specs_for(&Audience::Owner, None)
}

/// The specs of the tools offered to `audience`, kept to the names in `allowed_tools` when
/// given, in a stable order. A public audience gets `read_file`, `list_files` and
/// `search_files` over `system/public/` only.
pub fn specs_for(audience: &Audience, allowed_tools: Option<&[String]>) -> Vec<ToolSpec> {
    let public = !audience.is_owner();
    let mut specs = files::specs(public);
    if !public {
        specs.extend(skills::specs());
        specs.extend(remember::specs());
        specs.extend(meetings::specs());
    }
    specs.retain(|spec| offered(audience, allowed_tools, &spec.name));
    specs
}

fn offered(audience: &Audience, allowed_tools: Option<&[String]>, name: &str) -> bool {
    let by_audience = match audience {
        Audience::Owner => OWNER_TOOLS.contains(&name),
        Audience::Public { .. } => PUBLIC_TOOLS.contains(&name),
    };
    by_audience && allowed_tools.is_none_or(|allowed| allowed.iter().any(|a| a == name))
}

/// Runs one tool call, unless its tool is not offered in `ctx` (see [`specs_for`]): then the
/// result is an error and nothing runs, whatever the model sent.
pub async fn execute(ctx: &ToolContext, call: &ToolCall) -> ToolOutput {
    if !ctx.offers(&call.name) {
        return ToolOutput::error(refusal(ctx, &call.name));
    }
    let args = &call.arguments;
    if let Value::String(raw) = args {
        return ToolOutput::error(format!(
            "the arguments of {} were not valid JSON ({}); send a JSON object",
            call.name,
            shorten(raw, 200)
        ));
    }
    // The file tools confine themselves for a public audience; the others never run for one,
    // even if the check above were wrong.
    let output = match (&ctx.audience, call.name.as_str()) {
        (_, "read_file") => files::read_file(ctx, args).await,
        (_, "list_files") => files::list_files(ctx, args).await,
        (_, "search_files") => files::search_files(ctx, args).await,
        (Audience::Owner, "write_file") => files::write_file(ctx, args).await,
        (Audience::Owner, "edit_file") => files::edit_file(ctx, args).await,
        (Audience::Owner, "load_skill") => skills::load_skill(ctx, args).await,
        (Audience::Owner, "remember") => remember::remember(ctx, args).await,
        (Audience::Owner, "propose_meeting") => meetings::propose_meeting(ctx, args).await,
        (Audience::Owner, "answer_meeting") => meetings::answer_meeting(ctx, args).await,
        (Audience::Owner, "cancel_meeting") => meetings::cancel_meeting(ctx, args).await,
        (_, name) => Err(refusal(ctx, name)),
    };
    match output {
        Ok(text) => ToolOutput::ok(text),
        Err(message) => ToolOutput::error(message),
    }
}

/// Why a call to `name` does not run.
fn refusal(ctx: &ToolContext, name: &str) -> String {
    let names: Vec<String> = specs_for(&ctx.audience, ctx.allowed_tools.as_deref())
        .into_iter()
        .map(|s| s.name)
        .collect();
    let offered = if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    };
    if OWNER_TOOLS.contains(&name) {
        format!("the tool {name} is not available in this conversation; the tools are {offered}")
    } else {
        format!("there is no tool called {name:?}; the tools are {offered}")
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod public_tests;
