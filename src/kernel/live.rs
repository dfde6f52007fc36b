//! A turn as it happens: the answer's text while the model writes it, and what the tools do,
//! for replies streamed into the room by edits.

use tokio::sync::mpsc;

use super::{message::ToolCall, provider::TextSink, quote, tools::Tool};

/// Something that happened in a running turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// More text of the model's current answer (a piece after everything before).
    Text(String),
    /// A tool runs now: a few words on what it does ("reading `data/todo.md`…").
    Tool(String),
    /// The model is asked again after its tools ran: the text that comes next is the new
    /// answer (the text before it was said on the way).
    NextStep,
}

/// Where a turn tells what happens; the receiving end shows it in the room.
#[derive(Debug, Clone)]
pub struct Live {
    events: mpsc::UnboundedSender<LiveEvent>,
    detailed: bool,
}

impl Live {
    /// A live channel. `detailed`: tool progress may name files (the owner alone reads the
    /// room); otherwise it says only what kind of thing a tool does.
    pub fn channel(detailed: bool) -> (Self, mpsc::UnboundedReceiver<LiveEvent>) {
        let (events, receiver) = mpsc::unbounded_channel();
        (Self { events, detailed }, receiver)
    }

    /// Passes `event` on; nothing happens when no one listens any more.
    pub(crate) fn send(&self, event: LiveEvent) {
        let _ = self.events.send(event);
    }

    /// Tells that `call` runs now.
    pub(crate) fn tool(&self, call: &ToolCall) {
        self.send(LiveEvent::Tool(progress(call, self.detailed)));
    }
}

impl TextSink for Live {
    fn text(&self, delta: &str) {
        if !delta.is_empty() {
            self.send(LiveEvent::Text(delta.to_owned()));
        }
    }
}

/// A few words on what `call` does. With `detailed`, the path it names (the model's words,
/// kept to one short line in a code span); without, only the kind of work.
pub fn progress(call: &ToolCall, detailed: bool) -> String {
    let path = call
        .arguments
        .get("path")
        .and_then(serde_json::Value::as_str)
        .map(|p| quote::one_line(&p.replace('`', "'"), 80))
        .filter(|p| !p.trim().is_empty() && detailed);
    let on = |verb: &str, what: &str| match &path {
        Some(path) => format!("{verb} `{path}`…"),
        None => format!("{verb} {what}…"),
    };
    match Tool::from_name(&call.name) {
        Some(Tool::ReadFile) => on("reading", "a file"),
        Some(Tool::WriteFile) => on("writing", "a file"),
        Some(Tool::EditFile) => on("editing", "a file"),
        Some(Tool::ListFiles) => on("looking through", "the files"),
        Some(Tool::SearchFiles) => "searching the files…".to_owned(),
        Some(Tool::LoadSkill) => "reading a skill…".to_owned(),
        Some(Tool::Remember) => "making a note…".to_owned(),
        Some(Tool::Recall) => "searching my memory…".to_owned(),
        Some(Tool::Forget) => "forgetting…".to_owned(),
        Some(Tool::ProposeMeeting | Tool::CancelMeeting | Tool::AnswerMeeting) => {
            "working on a meeting…".to_owned()
        }
        Some(Tool::ProposePolicyChange) => "preparing a change for the owner…".to_owned(),
        Some(Tool::SendFile) => on("preparing", "a file to send"),
        None => "working…".to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(name: &str, arguments: serde_json::Value) -> ToolCall {
        ToolCall {
            id: "c".into(),
            name: name.into(),
            arguments,
        }
    }

    #[test]
    fn progress_names_files_only_when_detailed() {
        let read = call("read_file", json!({"path": "data/todo.md"}));
        assert_eq!(progress(&read, true), "reading `data/todo.md`…");
        assert_eq!(progress(&read, false), "reading a file…");
        let hostile = call(
            "write_file",
            json!({"path": "a`b\n# Heading ![x](http://evil)", "content": ""}),
        );
        let shown = progress(&hostile, true);
        assert!(
            !shown.contains('\n') && shown.matches('`').count() == 2,
            "{shown}"
        );
        assert_eq!(progress(&call("no_such_tool", json!({})), true), "working…");
        assert_eq!(
            progress(&call("search_files", json!({"query": "secret"})), true),
            "searching the files…"
        );
    }

    #[tokio::test]
    async fn text_pieces_and_tools_arrive_in_order() {
        let (live, mut events) = Live::channel(true);
        live.text("Hel");
        live.text("");
        live.tool(&call("list_files", json!({})));
        live.send(LiveEvent::NextStep);
        drop(live);
        let mut seen = Vec::new();
        while let Some(event) = events.recv().await {
            seen.push(event);
        }
        assert_eq!(
            seen,
            vec![
                LiveEvent::Text("Hel".into()),
                LiveEvent::Tool("looking through the files…".into()),
                LiveEvent::NextStep,
            ]
        );
    }
}
