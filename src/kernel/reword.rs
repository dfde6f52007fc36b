//! Wording a message to the owner in the twin's own voice: one model call, no tools.
//!
//! The facts (dates, times, names, commands) come from code; the model only says them its own
//! way. The caller checks that the facts survived (`crate::a2a::wording::check`) and keeps its
//! own text when they did not.

use std::sync::Arc;

use super::{KernelError, prompt, provider::Provider};
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
) -> Result<(String, crate::budget::UsageTotals), KernelError> {
    let files = tokio::task::spawn_blocking(move || prompt::read_files(&home, &VOICE_FILES))
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "reading the twin's voice stopped unexpectedly");
            Vec::new()
        });
    let mut system = String::from(INSTRUCTION);
    for (path, text) in &files {
        prompt::push_file(&mut system, path, text);
    }
    super::side_call::ask(provider, system, notice.to_owned(), MAX_TOKENS, model).await
}
