//! One model call beside a turn, without tools or history (wording a notice, summarising a
//! conversation): a system prompt, one user message, the answer's text and its tokens.

use super::{
    KernelError,
    message::Message,
    provider::{ChatRequest, Provider},
};
use crate::budget::UsageTotals;

/// Asks `provider` once; the answer's text (trimmed) and the tokens the call used.
pub(crate) async fn ask(
    provider: &dyn Provider,
    system: String,
    input: String,
    max_tokens: u32,
    model: Option<String>,
) -> Result<(String, UsageTotals), KernelError> {
    let request = ChatRequest {
        system,
        messages: vec![Message::user(input)],
        tools: Vec::new(),
        max_tokens,
        model,
    };
    let response = provider.complete(&request).await?;
    let mut usage = UsageTotals::default();
    usage.add_call(&response.usage.unwrap_or_default());
    Ok((response.content.trim().to_owned(), usage))
}
