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
mod policy;
mod remember;
mod send;
mod skills;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    Audience, HeldCall, ToolRequest,
    approvals::{self, Approval, Approvals},
    message::ToolCall,
    provider::ToolSpec,
};
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
    /// Whether the turn's context holds anyone else's text: risky calls then follow
    /// `approvals`, and policy changes cannot be proposed.
    pub exposed: bool,
    /// What happens to risky calls when `exposed`.
    pub approvals: Approvals,
    /// `Some`: other twins' text is in the context (their owners listed); proposing a
    /// meeting to someone else follows `approvals` too.
    pub peers_in_context: Option<Vec<ruma::OwnedUserId>>,
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
            exposed: false,
            approvals: Approvals::default(),
            peers_in_context: None,
        }
    }

    /// Records a request for the room session.
    fn record(&self, action: super::ToolRequest) -> Result<(), String> {
        self.requests
            .lock()
            .map(|mut requests| requests.push(action))
            .map_err(|_| "internal error: the request could not be recorded".to_owned())
    }

    /// Takes the requests recorded so far (the turn is over, or a held call ran).
    pub fn take_requests(&self) -> Vec<super::ToolRequest> {
        self.requests
            .lock()
            .map(|mut requests| std::mem::take(&mut *requests))
            .unwrap_or_default()
    }

    /// Whether the tool called `name` is offered in this context: policy changes are
    /// proposed only where nobody but the owner speaks.
    pub fn offers(&self, name: &str) -> bool {
        offered(&self.audience, self.allowed_tools.as_deref(), name)
            && !(self.exposed && Tool::from_name(name) == Some(Tool::ProposePolicyChange))
    }

    /// The specs of the tools offered in this context.
    pub fn specs(&self) -> Vec<ToolSpec> {
        let mut specs = specs_for(&self.audience, self.allowed_tools.as_deref());
        specs.retain(|spec| self.offers(&spec.name));
        specs
    }
}

/// Every tool the kernel has. Calls are dispatched on this, never on the name the model sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// Read a file of the home.
    ReadFile,
    /// Write a file (owner only).
    WriteFile,
    /// Replace text in a file (owner only).
    EditFile,
    /// List a folder.
    ListFiles,
    /// Search the files.
    SearchFiles,
    /// Load a skill (owner only).
    LoadSkill,
    /// Remember something about the owner (owner only).
    Remember,
    /// Search the long-term memory (owner only).
    Recall,
    /// Remove entries from the long-term memory (owner only).
    Forget,
    /// Ask another twin for a meeting (owner only).
    ProposeMeeting,
    /// Call a meeting off (owner only).
    CancelMeeting,
    /// Answer a meeting request (owner only).
    AnswerMeeting,
    /// Propose a change of a policy file for the owner to confirm (owner only, in their DM).
    ProposePolicyChange,
    /// Send a file of the home into the room (owner only).
    SendFile,
}

impl Tool {
    /// Every tool, in spec order.
    pub const ALL: [Self; 14] = [
        Self::ReadFile,
        Self::WriteFile,
        Self::EditFile,
        Self::ListFiles,
        Self::SearchFiles,
        Self::LoadSkill,
        Self::Remember,
        Self::Recall,
        Self::Forget,
        Self::ProposeMeeting,
        Self::CancelMeeting,
        Self::AnswerMeeting,
        Self::ProposePolicyChange,
        Self::SendFile,
    ];

    /// The name the model sees.
    pub fn name(self) -> &'static str {
        match self {
            Self::ReadFile => "read_file",
            Self::WriteFile => "write_file",
            Self::EditFile => "edit_file",
            Self::ListFiles => "list_files",
            Self::SearchFiles => "search_files",
            Self::LoadSkill => "load_skill",
            Self::Remember => "remember",
            Self::Recall => "recall",
            Self::Forget => "forget",
            Self::ProposeMeeting => "propose_meeting",
            Self::CancelMeeting => "cancel_meeting",
            Self::AnswerMeeting => "answer_meeting",
            Self::ProposePolicyChange => "propose_policy_change",
            Self::SendFile => "send_file",
        }
    }

    /// The tool called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        // `memory_search` is what Matrix OS and OpenClaw call `recall`.
        let name = if name == "memory_search" {
            "recall"
        } else {
            name
        };
        Self::ALL.into_iter().find(|tool| tool.name() == name)
    }

    /// Whether a public audience gets it (each such tool is confined to `system/public/`).
    pub fn is_public(self) -> bool {
        matches!(self, Self::ReadFile | Self::ListFiles | Self::SearchFiles)
    }
}

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
        specs.extend(policy::specs());
        specs.extend(send::specs());
    }
    specs.retain(|spec| offered(audience, allowed_tools, &spec.name));
    specs
}

fn offered(audience: &Audience, allowed_tools: Option<&[String]>, name: &str) -> bool {
    let Some(tool) = Tool::from_name(name) else {
        return false;
    };
    let by_audience = match audience {
        Audience::Owner => true,
        Audience::Public { .. } => tool.is_public(),
    };
    by_audience && allowed_tools.is_none_or(|allowed| allowed.iter().any(|a| a == tool.name()))
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
    let Some(tool) = Tool::from_name(&call.name) else {
        return ToolOutput::error(refusal(ctx, &call.name));
    };
    if let Some(held) = hold(ctx, tool, args).await {
        return held;
    }
    // The file tools confine themselves for a public audience; the others never run for one,
    // even if the check above were wrong.
    let output = match (&ctx.audience, tool) {
        (_, Tool::ReadFile) => files::read_file(ctx, args).await,
        (_, Tool::ListFiles) => files::list_files(ctx, args).await,
        (_, Tool::SearchFiles) => files::search_files(ctx, args).await,
        (Audience::Owner, Tool::WriteFile) => files::write_file(ctx, args).await,
        (Audience::Owner, Tool::EditFile) => files::edit_file(ctx, args).await,
        (Audience::Owner, Tool::LoadSkill) => skills::load_skill(ctx, args).await,
        (Audience::Owner, Tool::Remember) => remember::remember(ctx, args).await,
        (Audience::Owner, Tool::Recall) => remember::recall(ctx, args).await,
        (Audience::Owner, Tool::Forget) => remember::forget(ctx, args).await,
        (Audience::Owner, Tool::ProposeMeeting) => meetings::propose_meeting(ctx, args).await,
        (Audience::Owner, Tool::AnswerMeeting) => meetings::answer_meeting(ctx, args).await,
        (Audience::Owner, Tool::CancelMeeting) => meetings::cancel_meeting(ctx, args).await,
        (Audience::Owner, Tool::ProposePolicyChange) => policy::propose(ctx, args).await,
        (Audience::Owner, Tool::SendFile) => send::send_file(ctx, args).await,
        (Audience::Public { .. }, tool) => Err(refusal(ctx, tool.name())),
    };
    match output {
        Ok(text) => ToolOutput::ok(text),
        Err(message) => ToolOutput::error(message),
    }
}

/// In a turn exposed to others' text, what becomes of a risky call instead of running: held
/// for the owner's approval (recorded for the room session, which asks the owner), or
/// refused. `None`: it runs.
async fn hold(ctx: &ToolContext, tool: Tool, args: &Value) -> Option<ToolOutput> {
    if !ctx.audience.is_owner() {
        return None;
    }
    let classify = async || {
        let home = Arc::clone(&ctx.home);
        let args = args.clone();
        tokio::task::spawn_blocking(move || approvals::classify(&home, tool, &args))
            .await
            // Fail closed: a classification that could not run counts as private.
            .unwrap_or(Some(approvals::ActionClass::ReadPrivate))
    };
    let class = if ctx.exposed {
        classify().await?
    } else if approvals::contacts_someone_new(ctx.peers_in_context.as_deref(), tool, args) {
        approvals::ActionClass::Meetings
    } else if ctx.peers_in_context.is_some() {
        // A peer's text (a meeting title) is in the owner's own DM turn: answering and
        // reading stay the owner's, but a change of their files waits for them.
        match classify().await {
            Some(approvals::ActionClass::WriteFiles) => approvals::ActionClass::WriteFiles,
            _ => return None,
        }
    } else {
        return None;
    };
    match ctx.approvals.rule(class) {
        Approval::Allow => None,
        Approval::Deny => Some(ToolOutput::error(format!(
            "{} is not allowed in this room (others are present); the owner can do it in \
             their own DM with me",
            tool.name()
        ))),
        Approval::Ask => {
            let held = HeldCall {
                tool: tool.name().to_owned(),
                arguments: args.clone(),
                summary: approvals::summary(tool, args),
            };
            Some(match ctx.record(ToolRequest::Hold(held)) {
                Ok(()) if !ctx.exposed && class == approvals::ActionClass::WriteFiles => {
                    ToolOutput::ok(
                        "Held: other twins' text (meeting titles) is in this conversation and \
                         this would change your owner's files, so it waits for your owner's \
                         `!ai approve`; they were sent the number. Tell them so; do not try \
                         again.",
                    )
                }
                Ok(()) if !ctx.exposed => ToolOutput::ok(
                    "Held: other twins' text (meeting titles) is in this conversation and this \
                     would contact someone new, so it waits for your owner's `!ai approve`; \
                     they were sent the number. Tell them so; do not try again.",
                ),
                Ok(()) => ToolOutput::ok(
                    "Held: other people are in this room, so this needs your owner's approval. \
                     I have asked them in our private DM; it runs when they approve it there. \
                     Tell the room it is waiting for the owner's approval; do not try again.",
                ),
                Err(message) => ToolOutput::error(message),
            })
        }
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
    if Tool::from_name(name).is_some() {
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
