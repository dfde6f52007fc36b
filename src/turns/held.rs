//! Held actions: asking the owner in their DM about a risky call or a proposed policy change,
//! and finishing a turn once the owner approved its held call (`!ai approve <n>`).

use ruma::{EventId, UserId};

use super::TurnRunner;
use crate::{
    kernel::{
        HeldCall, ToolCall, ToolRequest, quote,
        tools::{self, ToolContext},
    },
    outbox::ReplyTo,
    room::{
        RoomError,
        decide::{Speaker, TurnJob},
    },
    storage::{HeldKind, HeldRow, NewHeld},
};

/// Longest result of an approved call given to the model, in characters.
const MAX_APPROVED_RESULT: usize = 12_000;

impl TurnRunner {
    /// Records a held call or a proposed policy change and asks the owner about it in their
    /// DM (once, however often this runs for `cause`).
    pub(super) async fn ask_owner(
        &self,
        job: &TurnJob,
        request: &ToolRequest,
        cause: &str,
    ) -> Result<(), RoomError> {
        let (kind, summary) = match request {
            ToolRequest::Hold(call) => (HeldKind::Tool, call.summary.clone()),
            ToolRequest::ProposePolicy(change) => {
                (HeldKind::Policy, format!("change {:?}", change.path))
            }
            _ => return Ok(()),
        };
        let payload = serde_json::to_string(request)
            .map_err(|e| RoomError::Internal(format!("cannot keep a held action: {e}")))?;
        let row = self
            .store
            .hold_action(&NewHeld {
                twin_id: &job.twin,
                cause,
                room_id: &job.room,
                kind,
                payload: &payload,
                summary: &summary,
            })
            .await?;
        let n = row.number;
        let text = match request {
            ToolRequest::ProposePolicy(change) => {
                let fence = fence_for(&change.diff);
                format!(
                    "📝 **Proposed change #{n}** of `{}`:\n\n{fence}diff\n{}\n{fence}\n\n\
                     `!ai confirm {n}` applies it; `!ai deny {n}` drops it.",
                    change.path,
                    change.diff.trim_end()
                )
            }
            _ if !job.group => format!(
                "✋ **Held #{n}**: I was about to {summary}. Other twins' words (meeting titles) \
                 are in our conversation and this contacts someone new, so I wait for you. \
                 `!ai approve {n}` runs it; `!ai deny {n}` drops it."
            ),
            _ => format!(
                "✋ **Held #{n}** in {}: I was about to {summary}. Others can read that room, so \
                 I wait for you. `!ai approve {n}` (here) runs it and I finish there; \
                 `!ai deny {n}` drops it.",
                job.room
            ),
        };
        self.outbox
            .tell_owner(&job.twin, &job.owner, &format!("held:{cause}"), &text)
            .await
    }

    /// Runs the held call of `held` (approved by the owner with the command `approval`), then
    /// finishes the turn that asked for it in its room: the model gets the call's result (as
    /// data) and answers there. Further risky calls are held again.
    pub async fn run_approved(
        &self,
        twin: &UserId,
        owner: &UserId,
        held: &HeldRow,
        approval: &EventId,
    ) -> Result<(), RoomError> {
        let Ok(ToolRequest::Hold(call)) = serde_json::from_str::<ToolRequest>(&held.payload) else {
            return Err(RoomError::Internal(format!(
                "held action {} cannot be read",
                held.number
            )));
        };
        // A replay after a crash: when the continuation turn was recorded, the call ran and
        // the turn only needs finishing; otherwise it runs (again, if a crash cut it short:
        // the held tools are reads, writes of given content and idempotent requests).
        let (output, requests) = if self.store.turn(twin, approval).await?.is_some() {
            (
                tools::ToolOutput {
                    content: String::new(),
                    is_error: false,
                },
                Vec::new(),
            )
        } else {
            let twin_home = self.twins.ensure(owner).await?;
            let ctx = ToolContext::owner(twin_home.home.clone(), held.room_id.to_string());
            let output = tools::execute(&ctx, &tool_call(&call, held.number)).await;
            (output, ctx.take_requests())
        };
        let job = TurnJob {
            twin: twin.to_owned(),
            owner: owner.to_owned(),
            room: held.room_id.clone(),
            event_id: approval.to_owned(),
            sender: owner.to_owned(),
            text: format!(
                "I approved what you held as #{} ({}). It ran{}; its result, as data:\n\n{}\n\n\
                 Finish what you were doing in this room with it.",
                held.number,
                call.summary,
                if output.is_error { " and failed" } else { "" },
                quote::block(&output.content, MAX_APPROVED_RESULT)
            ),
            speaker: Speaker::Owner,
            reply: ReplyTo::Plain,
            group: true,
            from_bot: false,
            media: None,
        };
        self.carry_out(&job, &requests, &format!("approved:{approval}"))
            .await;
        self.run(&job).await
    }
}

/// The call the model asked for, rebuilt from what was held.
fn tool_call(call: &HeldCall, number: i64) -> ToolCall {
    ToolCall {
        id: format!("held-{number}"),
        name: call.tool.clone(),
        arguments: call.arguments.clone(),
    }
}

/// A code fence longer than any run of backticks in `text`.
fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat(longest.max(2) + 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn fences_outlast_the_backticks_inside() {
        assert_eq!(fence_for("plain"), "```");
        assert_eq!(fence_for("a ```` b"), "`````");
    }

    #[test]
    fn messages_of_held_calls_keep_the_models_arguments() {
        let call = HeldCall {
            tool: "read_file".into(),
            arguments: serde_json::json!({"path": "system/user.md"}),
            summary: "read".into(),
        };
        let rebuilt = tool_call(&call, 3);
        assert_eq!(rebuilt.name, "read_file");
        assert_eq!(rebuilt.arguments["path"], "system/user.md");
    }
}
