//! Tools over the home's files: read, write, edit, list, search.
//!
//! For a public audience, reading, listing and searching are confined to `system/public/`
//! (see [`public::confine`]); writing and editing never run for one.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ToolContext, ToolResult, blocking, commit, object_schema, parse_args};
use crate::{
    home::{Home, HomeError, MAX_READ_BYTES},
    kernel::{
        provider::ToolSpec,
        public::{self, PUBLIC_DIR},
        quote,
    },
    media::pdf,
};

/// Most hits a search reports.
const MAX_SEARCH_HITS: usize = 50;

/// The specs of the file tools: all five for the owner; reading, listing and searching of
/// `system/public/` when `public`.
pub(super) fn specs(public: bool) -> Vec<ToolSpec> {
    if public {
        return public_specs();
    }
    let path =
        json!({"type": "string", "description": "Path relative to your home, e.g. notes/todo.md"});
    vec![
        ToolSpec {
            name: "read_file".into(),
            description: "Read a text file of your home.".into(),
            parameters: object_schema(json!({"path": path}), &["path"]),
        },
        ToolSpec {
            name: "write_file".into(),
            description: "Create or overwrite a text file of your home (parent folders are \
                          created). The change is versioned automatically."
                .into(),
            parameters: object_schema(
                json!({"path": path, "content": {"type": "string", "description": "The whole new file content"}}),
                &["path", "content"],
            ),
        },
        ToolSpec {
            name: "edit_file".into(),
            description: "Replace one exact occurrence of old_text with new_text in a file. \
                          old_text must appear exactly once; include surrounding lines to make \
                          it unique."
                .into(),
            parameters: object_schema(
                json!({
                    "path": path,
                    "old_text": {"type": "string", "description": "Exact text to replace"},
                    "new_text": {"type": "string", "description": "Replacement text"},
                }),
                &["path", "old_text", "new_text"],
            ),
        },
        ToolSpec {
            name: "list_files".into(),
            description: "List files and folders of your home (the home itself when path is \
                          omitted)."
                .into(),
            parameters: object_schema(
                json!({
                    "path": {"type": "string", "description": "Folder relative to your home; omit for the home itself"},
                    "recursive": {"type": "boolean", "description": "Also list sub-folders (default false)"},
                }),
                &[],
            ),
        },
        ToolSpec {
            name: "search_files".into(),
            description: "Find lines containing some text (case-insensitive) in the text files \
                          of your home."
                .into(),
            parameters: object_schema(
                json!({
                    "query": {"type": "string", "description": "Text to look for"},
                    "path": {"type": "string", "description": "Folder to search in; omit for the whole home"},
                }),
                &["query"],
            ),
        },
    ]
}

fn public_specs() -> Vec<ToolSpec> {
    let path = json!({
        "type": "string",
        "description": format!("Path relative to your home, under {PUBLIC_DIR}/, e.g. {PUBLIC_DIR}/profile.md"),
    });
    vec![
        ToolSpec {
            name: "read_file".into(),
            description: format!(
                "Read one of your public text files (only files under {PUBLIC_DIR}/ are \
                 available in this conversation)."
            ),
            parameters: object_schema(json!({"path": path}), &["path"]),
        },
        ToolSpec {
            name: "list_files".into(),
            description: format!(
                "List your public files and folders (under {PUBLIC_DIR}/, the default when \
                 path is omitted)."
            ),
            parameters: object_schema(
                json!({
                    "path": {"type": "string", "description": format!("Folder under {PUBLIC_DIR}/; omit for {PUBLIC_DIR} itself")},
                    "recursive": {"type": "boolean", "description": "Also list sub-folders (default false)"},
                }),
                &[],
            ),
        },
        ToolSpec {
            name: "search_files".into(),
            description: format!(
                "Find lines containing some text (case-insensitive) in your public files under \
                 {PUBLIC_DIR}/."
            ),
            parameters: object_schema(
                json!({
                    "query": {"type": "string", "description": "Text to look for"},
                    "path": {"type": "string", "description": format!("Folder under {PUBLIC_DIR}/ to search in; omit for all of {PUBLIC_DIR}")},
                }),
                &["query"],
            ),
        },
    ]
}

/// The path a call may use: as given for the owner, confined to `system/public/`
/// for anyone else.
fn scoped(home: &Home, public: bool, rel: &str) -> Result<String, HomeError> {
    if public {
        public::confine(home, rel)
    } else {
        Ok(rel.to_owned())
    }
}

/// A folder argument: omitted or empty is the home for the owner, `system/public` otherwise.
fn folder_or_default(path: Option<String>, public: bool) -> String {
    match path {
        Some(path) if !path.trim().is_empty() => path,
        _ if public => PUBLIC_DIR.to_owned(),
        _ => String::new(),
    }
}

/// Refuses a write to a policy file: those change only by the owner's own `!ai` commands, so
/// nobody's words in a conversation can change what the twin may do.
fn refuse_policy(home: &Home, rel: &str) -> Result<(), HomeError> {
    if home.is_policy_path(rel)? {
        return Err(HomeError::Other(format!(
            "{rel:?} is a policy file (it decides what you may do), and no tool may change it. \
             Only your owner changes it: with !ai commands in their DM with you (!ai help lists \
             them), or, when they ask you for a change there, through propose_policy_change, \
             which they confirm"
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
struct PathArgs {
    path: String,
}

#[derive(Deserialize)]
struct WriteArgs {
    path: String,
    content: String,
}

#[derive(Deserialize)]
struct EditArgs {
    path: String,
    old_text: String,
    new_text: String,
}

#[derive(Deserialize)]
struct ListArgs {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    recursive: Option<bool>,
}

#[derive(Deserialize)]
struct SearchArgs {
    query: String,
    #[serde(default)]
    path: Option<String>,
}

pub(super) async fn read_file(ctx: &ToolContext, args: &Value) -> ToolResult {
    let PathArgs { path } = parse_args("read_file", args, r#"{"path": string}"#)?;
    let public = !ctx.audience.is_owner();
    if pdf::has_pdf_name(&path) {
        return read_pdf(ctx, public, path).await;
    }
    let shown = path.clone();
    let text = blocking(ctx, move |home| {
        home.read_to_string(&scoped(home, public, &path)?)
    })
    .await?;
    Ok(quote::file(&shown, &text))
}

/// `read_file` of a PDF: its text, extracted.
async fn read_pdf(ctx: &ToolContext, public: bool, path: String) -> ToolResult {
    let shown = path.clone();
    let bytes = blocking(ctx, move |home| {
        home.read_bytes(
            &scoped(home, public, &path)?,
            pdf::MAX_PDF_BYTES,
            "reading a PDF",
        )
    })
    .await?;
    let max_chars = usize::try_from(MAX_READ_BYTES).unwrap_or(usize::MAX) / 2;
    pdf::text_of_async(bytes, max_chars)
        .await
        .map(|text| quote::data(&format!("Text of {shown}, extracted from the PDF"), &text))
        .map_err(|why| format!("{shown:?} cannot be read as text: {why}"))
}

pub(super) async fn write_file(ctx: &ToolContext, args: &Value) -> ToolResult {
    let WriteArgs { path, content } =
        parse_args("write_file", args, r#"{"path": string, "content": string}"#)?;
    let bytes = content.len();
    let target = path.clone();
    blocking(ctx, move |home| {
        refuse_policy(home, &target)?;
        home.write_atomic(&target, content.as_bytes())
    })
    .await?;
    let note = commit(ctx, "write_file", &path).await.unwrap_or_default();
    Ok(format!("Wrote {bytes} bytes to {path}.{note}"))
}

pub(super) async fn edit_file(ctx: &ToolContext, args: &Value) -> ToolResult {
    let EditArgs {
        path,
        old_text,
        new_text,
    } = parse_args(
        "edit_file",
        args,
        r#"{"path": string, "old_text": string, "new_text": string}"#,
    )?;
    if old_text.is_empty() {
        return Err(
            "old_text is empty; give the exact text to replace (use write_file to create a file)"
                .into(),
        );
    }
    let target = path.clone();
    blocking(ctx, move |home| {
        refuse_policy(home, &target)?;
        home.edit(&target, &old_text, &new_text)
    })
    .await?;
    let note = commit(ctx, "edit_file", &path).await.unwrap_or_default();
    Ok(format!("Edited {path}.{note}"))
}

pub(super) async fn list_files(ctx: &ToolContext, args: &Value) -> ToolResult {
    let ListArgs { path, recursive } = parse_args(
        "list_files",
        args,
        r#"{"path"?: string, "recursive"?: boolean}"#,
    )?;
    let public = !ctx.audience.is_owner();
    let folder = folder_or_default(path, public);
    let shown = if folder.is_empty() {
        "your home".to_owned()
    } else {
        folder.clone()
    };
    let entries = blocking(ctx, move |home| {
        let mut entries = home.list(&scoped(home, public, &folder)?, recursive.unwrap_or(false))?;
        if public {
            // A link in the public folder to anywhere else is not shown at all.
            entries.retain(|entry| public::is_public(home, &entry.path));
        }
        Ok(entries)
    })
    .await?;
    if entries.is_empty() {
        return Ok(format!("{shown} is empty."));
    }
    let lines: Vec<String> = entries
        .iter()
        .map(|e| {
            if e.is_dir {
                format!("{}/", e.path)
            } else {
                format!("{} ({} bytes)", e.path, e.size)
            }
        })
        .collect();
    Ok(lines.join("\n"))
}

pub(super) async fn search_files(ctx: &ToolContext, args: &Value) -> ToolResult {
    let SearchArgs { query, path } = parse_args(
        "search_files",
        args,
        r#"{"query": string, "path"?: string}"#,
    )?;
    if query.trim().is_empty() {
        return Err("query is empty; give some text to look for".into());
    }
    let public = !ctx.audience.is_owner();
    let folder = folder_or_default(path, public);
    let needle = query.clone();
    // Search never follows a link below its starting point, so confining that point is enough.
    let hits = blocking(ctx, move |home| {
        home.search(
            &needle,
            &scoped(home, public, &folder)?,
            MAX_SEARCH_HITS + 1,
        )
    })
    .await?;
    if hits.is_empty() {
        return Ok(format!("No lines contain {query:?}."));
    }
    let lines: Vec<String> = hits
        .iter()
        .take(MAX_SEARCH_HITS)
        .map(|h| format!("{}:{}: {}", h.path, h.line, h.text))
        .collect();
    let more = if hits.len() > MAX_SEARCH_HITS {
        format!("\n[more than {MAX_SEARCH_HITS} hits; search a narrower path or query]")
    } else {
        String::new()
    };
    Ok(format!(
        "{}{more}",
        quote::data(&format!("Lines that contain {query:?}"), &lines.join("\n"))
    ))
}
