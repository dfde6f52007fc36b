//! The memory tools: `remember` appends to the long-term memory file, `recall` searches the
//! memory (full text), `forget` removes entries. The files are the truth (see
//! [`crate::memory`]).

use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ToolContext, ToolResult, blocking, commit, object_schema, parse_args};
use crate::{
    kernel::{prompt::utc_timestamp, provider::ToolSpec},
    memory::{self, MEMORY_FILE},
};

/// Entries `recall` returns when the model does not say.
const DEFAULT_RECALL: usize = 8;

pub(super) fn specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "remember".into(),
            description: "Keep something worth remembering about your owner or their life (a \
                          preference, a name, a plan, a decision) in your long-term memory, \
                          agents/memory/long-term.md. Memories relevant to a message are shown \
                          with it; recall searches them all."
                .into(),
            parameters: object_schema(
                json!({"fact": {"type": "string", "description": "One short, self-contained entry, e.g. 'Prefers tea over coffee'"}}),
                &["fact"],
            ),
        },
        ToolSpec {
            name: "recall".into(),
            description: "Search your long-term memory (agents/memory/, session summaries) by \
                          words; returns the best matching entries."
                .into(),
            parameters: object_schema(
                json!({
                    "query": {"type": "string", "description": "Words to look for, e.g. 'sister birthday'"},
                    "limit": {"type": "integer", "description": "Most entries to return (default 8, at most 20)"},
                }),
                &["query"],
            ),
        },
        ToolSpec {
            name: "forget".into(),
            description: "Remove entries from your long-term memory: every entry under \
                          agents/memory/ containing these words (ignoring case)."
                .into(),
            parameters: object_schema(
                json!({"entry": {"type": "string", "description": "Words of the entry to forget, as recall shows it"}}),
                &["entry"],
            ),
        },
    ]
}

#[derive(Deserialize)]
struct RememberArgs {
    fact: String,
}

pub(super) async fn remember(ctx: &ToolContext, args: &Value) -> ToolResult {
    let RememberArgs { fact } = parse_args("remember", args, r#"{"fact": string}"#)?;
    let today = utc_timestamp(SystemTime::now())[..10].to_owned();
    let added = blocking(ctx, move |home| memory::remember(home, &fact, &today)).await?;
    if !added {
        return Ok(format!("Already remembered (in {MEMORY_FILE})."));
    }
    let note = commit(ctx, "remember", MEMORY_FILE)
        .await
        .unwrap_or_default();
    Ok(format!("Remembered (in {MEMORY_FILE}).{note}"))
}

#[derive(Deserialize)]
struct RecallArgs {
    query: String,
    #[serde(default)]
    limit: Option<u32>,
}

pub(super) async fn recall(ctx: &ToolContext, args: &Value) -> ToolResult {
    let RecallArgs { query, limit } =
        parse_args("recall", args, r#"{"query": string, "limit"?: integer}"#)?;
    let limit = limit
        .map_or(DEFAULT_RECALL, |n| n as usize)
        .clamp(1, memory::MAX_RESULTS);
    let entries = blocking(ctx, |home| Ok(memory::collect(home))).await?;
    if entries.is_empty() {
        return Ok("Your memory is empty: nothing was remembered yet.".into());
    }
    let found = memory::search(&entries, &query, limit)
        .await
        .map_err(|e| e.to_string())?;
    if found.is_empty() {
        return Ok(format!("No memory matches {query:?}."));
    }
    let lines: Vec<String> = found
        .iter()
        .map(|e| format!("- {} (in {})", e.text, e.source))
        .collect();
    Ok(crate::kernel::quote::data(
        &format!("Memories that match {query:?}"),
        &lines.join("\n"),
    ))
}

#[derive(Deserialize)]
struct ForgetArgs {
    entry: String,
}

pub(super) async fn forget(ctx: &ToolContext, args: &Value) -> ToolResult {
    let ForgetArgs { entry } = parse_args("forget", args, r#"{"entry": string}"#)?;
    let removed = blocking(ctx, move |home| memory::forget(home, &entry)).await?;
    if removed.is_empty() {
        return Ok(
            "No entry of agents/memory/ contains those words; nothing was forgotten.".into(),
        );
    }
    let mut files: Vec<&str> = removed.iter().map(|e| e.source.as_str()).collect();
    files.dedup();
    let note = commit(ctx, "forget", &files.join(", "))
        .await
        .unwrap_or_default();
    let lines: Vec<String> = removed.iter().map(|e| format!("- {}", e.text)).collect();
    Ok(format!(
        "Forgot {} entr{}:\n{}{note}",
        removed.len(),
        if removed.len() == 1 { "y" } else { "ies" },
        lines.join("\n")
    ))
}
