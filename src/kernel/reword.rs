//! Wording a message to the owner in the twin's own voice: one model call, no tools.
//!
//! The facts (dates, times, names, commands) come from code; the model only says them its own
//! way. The caller checks that the facts survived (`crate::a2a::wording::check`) and keeps its
//! own text when they did not.

use std::sync::Arc;

use super::{
    KernelError,
    message::Message,
    prompt,
    provider::{ChatRequest, Provider},
};
use crate::home::Home;

/// What the model is asked to do with the message.
const INSTRUCTION: &str = "You are writing to your owner in your own voice. The user message \
is a notice your code prepared for them. Rewrite it as one short, friendly chat message. Keep \
every date, weekday, time, time zone, Matrix ID, title and `command` exactly as written; add no \
date, time or number of your own and no facts that are not in the notice. Answer with the \
message only.";

/// The self files that give the twin its voice (the owner is the reader).
const VOICE_FILES: [&str; 2] = ["system/soul.md", "system/identity.md"];

/// Most tokens a reworded notice may take.
const MAX_TOKENS: u32 = 400;

/// Asks the model to reword `notice` for the owner.
pub(crate) async fn reword(
    provider: &dyn Provider,
    home: Arc<Home>,
    notice: &str,
    model: Option<String>,
) -> Result<String, KernelError> {
    let parts = prompt::read_home(home).await;
    let mut system = String::from(INSTRUCTION);
    for (path, text) in parts
        .files
        .iter()
        .filter(|(path, _)| VOICE_FILES.contains(&path.as_str()))
    {
        system.push_str(&format!("\n\n<!-- {path} -->\n{}", text.trim()));
    }
    let request = ChatRequest {
        system,
        messages: vec![Message::user(notice.to_owned())],
        tools: Vec::new(),
        max_tokens: MAX_TOKENS,
        model,
    };
    let response = provider.complete(&request).await?;
    Ok(response.content.trim().to_owned())
}
