//! `remember`: a lasting fact about the owner, kept in `system/user.md`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ToolContext, ToolResult, blocking, commit, object_schema, parse_args};
use crate::kernel::provider::ToolSpec;

/// Where [`crate::home::Home::remember`] writes; named in the commit message.
const USER_FILE: &str = "system/user.md";

pub(super) fn specs() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: "remember".into(),
        description: "Keep a lasting fact about your owner (a preference, a name, a habit) in \
                      system/user.md, which you see at the start of every conversation."
            .into(),
        parameters: object_schema(
            json!({"fact": {"type": "string", "description": "One short fact, e.g. 'Prefers tea over coffee'"}}),
            &["fact"],
        ),
    }]
}

#[derive(Deserialize)]
struct RememberArgs {
    fact: String,
}

pub(super) async fn remember(ctx: &ToolContext, args: &Value) -> ToolResult {
    let RememberArgs { fact } = parse_args("remember", args, r#"{"fact": string}"#)?;
    let fact = fact.trim().to_owned();
    if fact.is_empty() {
        return Err("fact is empty; give the fact to remember".into());
    }
    blocking(ctx, move |home| home.remember(&fact)).await?;
    let note = commit(ctx, "remember", USER_FILE).await.unwrap_or_default();
    Ok(format!("Remembered (in {USER_FILE}).{note}"))
}
