//! The agent loop: ask the model, run the tools it asks for, repeat until it answers.

use std::{
    sync::Arc,
    time::{Instant, SystemTime},
};

use super::{
    Audience, KernelError, Turn, TurnOutcome,
    live::LiveEvent,
    message::{Message, sanitize, text_only},
    prompt,
    provider::{ChatRequest, ChatResponse, Provider, StopReason},
    public,
    tools::{self, ToolContext},
};
use crate::home::Home;

/// Bounds of one turn.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Most model calls.
    pub(crate) max_steps: u32,
    /// `max_tokens` of each call.
    pub(crate) max_tokens: u32,
    /// Most characters of the first request.
    pub(crate) max_prompt_chars: usize,
}

/// Memories found for a message that go with it to the model.
const MEMORIES_PER_TURN: usize = 5;

/// Messages left out together when the history is over the budget: the cut moves in steps,
/// so the requests between two steps share their beginning (prompt caching).
const FIT_STEP: usize = 8;

/// The newest part of `history` that fits in `budget` characters (as stored, JSON), cut
/// from the oldest in steps of [`FIT_STEP`] messages.
fn fit(history: Vec<Message>, budget: usize) -> Vec<Message> {
    let sizes: Vec<usize> = history
        .iter()
        .map(|m| serde_json::to_string(m).map(|s| s.len()).unwrap_or(0))
        .collect();
    let mut total: usize = sizes.iter().sum();
    let mut start = 0;
    while total > budget && start < history.len() {
        let end = (start + FIT_STEP).min(history.len());
        total -= sizes[start..end].iter().sum::<usize>();
        start = end;
    }
    if start > 0 {
        tracing::info!(
            left_out = start,
            "history over the prompt budget; the oldest messages are left out"
        );
    }
    history.into_iter().skip(start).collect()
}

/// Runs `turn` against `provider`.
pub(crate) async fn run(
    provider: &dyn Provider,
    home: Arc<Home>,
    turn: Turn,
    limits: Limits,
    metrics: Option<&crate::metrics::Metrics>,
) -> Result<TurnOutcome, KernelError> {
    let Turn {
        room_id,
        history,
        input,
        images,
        audience,
        allowed_tools,
        model,
        context,
        exposed,
        approvals,
        peers_in_context,
        live,
    } = turn;
    // The system prompt stays the same from turn to turn; what changes (the time, what waits
    // for the owner) goes in a note just before the message, after the history, and is kept
    // with it: every request starts with the previous one byte for byte (prompt caching).
    let (system, history, note) = match &audience {
        Audience::Owner => {
            let parts = prompt::read_home(Arc::clone(&home)).await;
            let system = prompt::compose(&parts, &room_id);
            // Memories go only where the owner alone reads the answer: in a room others read,
            // the model can still ask for them with `recall` (held for the owner's approval).
            let memories = if exposed {
                Vec::new()
            } else {
                crate::memory::relevant(Arc::clone(&home), &input, MEMORIES_PER_TURN).await
            };
            let note = prompt::turn_note(SystemTime::now(), context.as_deref(), &memories);
            (system, history, note)
        }
        Audience::Public { person } => {
            let parts = public::prompt::read_home(Arc::clone(&home)).await;
            let system = public::prompt::compose(&parts, person, &room_id);
            // Tool calls and results of the owner's turns in this room may hold private files.
            (
                system,
                text_only(history),
                prompt::turn_note(SystemTime::now(), None, &[]),
            )
        }
    };
    let budget = limits
        .max_prompt_chars
        .saturating_sub(system.chars().count() + note.chars().count() + input.chars().count());
    let mut messages = sanitize(fit(history, budget));
    let first_new = messages.len();
    messages.push(Message::note(note));
    messages.push(Message::User {
        content: input,
        images,
    });
    let ctx = ToolContext {
        home,
        room_id,
        audience,
        allowed_tools,
        requests: Default::default(),
        exposed,
        approvals,
        peers_in_context,
    };
    let mut request = ChatRequest {
        system,
        messages,
        tools: ctx.specs(),
        max_tokens: limits.max_tokens,
        model,
    };
    let max_steps = limits.max_steps.max(1);
    let mut usage = crate::budget::UsageTotals::default();

    for step in 1..=max_steps {
        let started = Instant::now();
        if let Some(metrics) = metrics {
            metrics.model_calls.inc();
        }
        let response = match &live {
            Some(live) => {
                if step > 1 {
                    live.send(LiveEvent::NextStep);
                }
                provider.stream(&request, live).await?
            }
            None => provider.complete(&request).await?,
        };
        log_step(step, started, &response);
        usage.add_call(&response.usage.unwrap_or_default());
        if let (Some(metrics), Some(usage)) = (metrics, response.usage) {
            metrics.add_model_tokens(
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_tokens,
                usage.cache_write_tokens,
            );
        }
        let ChatResponse {
            content,
            tool_calls,
            stop_reason,
            ..
        } = response;
        request.messages.push(Message::Assistant {
            content: content.clone(),
            tool_calls: tool_calls.clone(),
        });
        if tool_calls.is_empty() {
            let reply = final_reply(&content, &stop_reason);
            return Ok(outcome(reply, request.messages, first_new, &ctx, usage));
        }
        // Calls of the last allowed step still run: the model asked for them, and the stored
        // session stays well-formed with every call answered.
        for call in &tool_calls {
            if let Some(live) = &live {
                live.tool(call);
            }
            let output = tools::execute(&ctx, call).await;
            tracing::debug!(
                tool = %call.name,
                is_error = output.is_error,
                chars = output.content.len(),
                "tool ran"
            );
            request.messages.push(Message::Tool {
                call_id: call.id.clone(),
                name: call.name.clone(),
                content: output.content,
                is_error: output.is_error,
            });
        }
    }

    tracing::warn!(room = %ctx.room_id, max_steps, "turn stopped at the step limit");
    let partial = partial_text(&request.messages[first_new..]);
    let note = format!(
        "_(I stopped after {max_steps} steps without finishing. Say \"continue\" if you want me \
         to go on.)_"
    );
    let reply = if partial.is_empty() {
        note
    } else {
        format!("{partial}\n\n{note}")
    };
    Ok(outcome(reply, request.messages, first_new, &ctx, usage))
}

fn outcome(
    reply: String,
    mut messages: Vec<Message>,
    first_new: usize,
    ctx: &ToolContext,
    usage: crate::budget::UsageTotals,
) -> TurnOutcome {
    TurnOutcome {
        requests: ctx.take_requests(),
        reply,
        // Images went to the model once; the session keeps the words about them.
        messages: messages
            .split_off(first_new)
            .into_iter()
            .map(Message::without_images)
            .collect(),
        usage,
    }
}

fn final_reply(content: &str, stop_reason: &StopReason) -> String {
    let text = content.trim();
    let text = if text.is_empty() {
        "_(The model gave an empty answer.)_"
    } else {
        text
    };
    match stop_reason {
        StopReason::MaxTokens => {
            format!("{text}\n\n_(My answer was cut off at the length limit.)_")
        }
        StopReason::Other(reason) if reason == "content_filter" || reason == "refusal" => {
            format!("{text}\n\n_(The model stopped: {reason}.)_")
        }
        _ => text.to_owned(),
    }
}

/// What the model said along the way in this turn.
fn partial_text(messages: &[Message]) -> String {
    let parts: Vec<&str> = messages
        .iter()
        .filter_map(|m| match m {
            Message::Assistant { content, .. } if !content.trim().is_empty() => {
                Some(content.trim())
            }
            _ => None,
        })
        .collect();
    parts.join("\n\n")
}

fn log_step(step: u32, started: Instant, response: &ChatResponse) {
    let usage = response.usage.unwrap_or_default();
    tracing::info!(
        step,
        ms = started.elapsed().as_millis() as u64,
        tool_calls = response.tool_calls.len(),
        input_tokens = usage.input_tokens,
        cache_read_tokens = usage.cache_read_tokens,
        output_tokens = usage.output_tokens,
        "model call done"
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn history_is_cut_from_the_oldest_to_fit_the_budget() {
        let history: Vec<Message> = (0..10)
            .map(|i| Message::user(format!("{i}:{}", "x".repeat(100))))
            .collect();
        assert_eq!(fit(history.clone(), usize::MAX).len(), 10);
        // In steps of eight: the first eight go, then the rest fits.
        let kept = fit(history.clone(), 350);
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(kept[1], history[9]);
        let kept = fit(history.clone(), 1_000);
        assert_eq!(kept.len(), 2, "the cut moves by whole steps: {kept:?}");
        assert!(fit(history, 10).is_empty());
    }
}
