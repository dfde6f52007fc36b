//! `load_skill`: the full text of a skill listed in the system prompt.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ToolContext, ToolResult, blocking, object_schema, parse_args};
use crate::kernel::provider::ToolSpec;

pub(super) fn specs() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: "load_skill".into(),
        description: "Read the full instructions of a skill from the skills list in your system \
                      prompt before using it."
            .into(),
        parameters: object_schema(
            json!({"name": {"type": "string", "description": "The skill's name as listed"}}),
            &["name"],
        ),
    }]
}

#[derive(Deserialize)]
struct SkillArgs {
    name: String,
}

pub(super) async fn load_skill(ctx: &ToolContext, args: &Value) -> ToolResult {
    let SkillArgs { name } = parse_args("load_skill", args, r#"{"name": string}"#)?;
    blocking(ctx, move |home| home.load_skill(&name)).await
}
