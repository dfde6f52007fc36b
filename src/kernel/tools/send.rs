//! `send_file`: sends a file of the home into the room of the turn (as `m.image`, `m.audio`,
//! `m.video` or `m.file`; encrypted in encrypted rooms). The tool checks the file and leaves a
//! request; the turn runner sends it after the answer, once (see [`ToolRequest::SendFile`]).

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ToolContext, ToolResult, blocking, object_schema, parse_args};
use crate::{
    home::HomeError,
    kernel::{ToolRequest, provider::ToolSpec},
    media::human_size,
};

/// Largest file `send_file` takes, in bytes (what most homeservers accept as an upload).
pub(super) const MAX_SEND_BYTES: u64 = 50 * 1024 * 1024;

pub(super) fn specs() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: "send_file".into(),
        description: "Send a file of your home into this room as an attachment (images show as \
                      photos). It is sent right after your answer; say in your answer that it \
                      comes."
            .into(),
        parameters: object_schema(
            json!({
                "path": {"type": "string", "description": "The file, relative to your home, e.g. 'data/report.pdf'"},
                "caption": {"type": "string", "description": "Words shown with the file (optional)"},
            }),
            &["path"],
        ),
    }]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendArgs {
    path: String,
    #[serde(default)]
    caption: Option<String>,
}

pub(super) async fn send_file(ctx: &ToolContext, args: &Value) -> ToolResult {
    let SendArgs { path, caption } =
        parse_args("send_file", args, r#"{"path": string, "caption"?: string}"#)?;
    let target = path.clone();
    let (normalized, size) = blocking(ctx, move |home| {
        let resolved = home.resolve(&target)?;
        let meta = std::fs::metadata(&resolved).map_err(|_| HomeError::NotFound(target.clone()))?;
        if !meta.is_file() {
            return Err(HomeError::Other(format!("{target} is not a file")));
        }
        Ok((home.normalized(&target)?, meta.len()))
    })
    .await?;
    if size > MAX_SEND_BYTES {
        return Err(format!(
            "{normalized} is {}; send_file takes at most {}",
            human_size(size),
            human_size(MAX_SEND_BYTES)
        ));
    }
    if size == 0 {
        return Err(format!("{normalized} is empty"));
    }
    let caption = caption
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    ctx.record(ToolRequest::SendFile {
        room: ctx.room_id.clone(),
        path: normalized.clone(),
        caption,
    })?;
    Ok(format!(
        "{normalized} ({}) will be sent to this room right after your answer.",
        human_size(size)
    ))
}
