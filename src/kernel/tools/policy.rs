//! `propose_policy_change`: the model turns the owner's words in their own DM into a proposed
//! change of a policy file; nothing changes until the owner confirms it (`!ai confirm`).

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ToolContext, ToolResult, blocking, object_schema, parse_args};
use crate::{
    home::HomeError,
    kernel::{PolicyChange, ToolRequest, provider::ToolSpec},
    policy::proposal,
};

pub(super) fn specs() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: "propose_policy_change".into(),
        description: "Propose a new content for one of your policy files (system/access.toml, \
                      system/meetings.toml, system/settings.toml, system/rooms/*.toml, \
                      system/public/*, .gitignore), when your owner asks for it. Your owner is \
                      shown the change as a diff and it applies only when they answer \
                      `!ai confirm`; nothing changes before."
            .into(),
        parameters: object_schema(
            json!({
                "path": {"type": "string", "description": "The policy file, e.g. system/access.toml"},
                "content": {"type": "string", "description": "Its whole new content"},
            }),
            &["path", "content"],
        ),
    }]
}

#[derive(Deserialize)]
struct ProposeArgs {
    path: String,
    content: String,
}

pub(super) async fn propose(ctx: &ToolContext, args: &Value) -> ToolResult {
    let ProposeArgs { path, content } = parse_args(
        "propose_policy_change",
        args,
        r#"{"path": string, "content": string}"#,
    )?;
    let checked = blocking(ctx, move |home| {
        let Some(path) = proposal::policy_file(home, &path)? else {
            return Err(HomeError::Other(format!(
                "{path:?} is not a policy file; other files are written with write_file"
            )));
        };
        proposal::check_content(&path, &content).map_err(HomeError::Other)?;
        let existing = match home.read_to_string(&path) {
            Ok(old) => Some(old),
            Err(HomeError::NotFound(_)) => None,
            Err(err) => return Err(err),
        };
        let base = proposal::base_of(existing.as_deref());
        let old = existing.unwrap_or_default();
        if old == content {
            return Err(HomeError::Other(format!(
                "{path} already has exactly this content; nothing to propose"
            )));
        }
        let diff = proposal::diff(&path, &old, &content);
        Ok(PolicyChange {
            path,
            content,
            diff,
            base,
        })
    })
    .await?;
    let diff = checked.diff.clone();
    let path = checked.path.clone();
    ctx.record(ToolRequest::ProposePolicy(checked))?;
    Ok(format!(
        "Proposed; nothing has changed yet. Your owner is shown this change of {path} right \
         after your answer, and it applies when they reply `!ai confirm`:\n\n{diff}"
    ))
}
