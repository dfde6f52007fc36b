//! Answers streamed into the room by edits.
//!
//! While the model writes, the twin sends its first message as soon as it has a few words,
//! then edits it in place (`m.replace`) at most once a second; the message and every edit
//! carry the MSC4357 live mark, and the final edit, sent once the turn is recorded, does not.
//! While tools run the message says what they do. A text too long for one event goes on in a
//! new message. The message being written is recorded in the database: a turn run again after
//! a crash edits that message instead of answering twice.
//!
//! Rooms with `org.matrix.msc4357.live_messaging {"enabled": false}` state, and rooms or twins
//! whose settings say `stream = false`, get the whole answer in one message at the end.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, events::Mentions};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    kernel::live::LiveEvent,
    matrix::{TxnPart, txn_id_for},
    outbox::{Outbox, ReplyTo, Style, message_content},
    room::RoomError,
    storage::Store,
};

/// The room state with which a room turns live messages off (MSC4357).
pub(crate) const LIVE_MESSAGING_STATE: &str = "org.matrix.msc4357.live_messaging";
/// Most bytes of Markdown in one message: with its HTML, an edit's fallback and encryption,
/// an event stays well inside the homeserver's 64 KiB.
pub(crate) const MAX_MESSAGE_BYTES: usize = 6_000;
/// Least time between two edits of a message.
const EDIT_EVERY: Duration = Duration::from_secs(1);
/// Words of an answer before its first message is sent.
const FIRST_WORDS: usize = 3;

/// Where an answer goes, and as whom.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) store: Store,
    pub(crate) twin: OwnedUserId,
    pub(crate) room: OwnedRoomId,
    /// The message answered (the cause of every transaction id).
    pub(crate) trigger: OwnedEventId,
    pub(crate) reply: ReplyTo,
    pub(crate) mention: Option<OwnedUserId>,
}

impl Target {
    fn mentions(&self) -> Mentions {
        match &self.mention {
            Some(user) => Mentions::with_user_ids([user.clone()]),
            None => Mentions::new(),
        }
    }

    /// How part `n` of the answer is placed: the first as the answer is, later ones in the
    /// same thread (or plain), mentioning nobody again.
    fn placement(&self, n: u32) -> (ReplyTo, Option<&ruma::UserId>) {
        if n == 0 {
            return (self.reply.clone(), self.mention.as_deref());
        }
        let reply = match &self.reply {
            ReplyTo::Thread { .. } => self.reply.clone(),
            _ => ReplyTo::Plain,
        };
        (reply, None)
    }

    fn txn(&self, part: u32) -> ruma::OwnedTransactionId {
        if part == 0 {
            txn_id_for(self.twin.as_str(), self.trigger.as_str(), TxnPart::Answer)
        } else {
            let cause = format!("{}:{part}", self.trigger);
            txn_id_for(self.twin.as_str(), &cause, TxnPart::Continuation)
        }
    }

    /// Sends part `n` as a new message (live or not).
    async fn send_part(&self, n: u32, text: &str, live: bool) -> Result<OwnedEventId, RoomError> {
        let (reply, mention) = self.placement(n);
        let content = message_content(text, Style::Answer, &reply, mention);
        self.outbox
            .send_live(&self.twin, &self.room, &self.txn(n), content, live)
            .await
    }

    /// Edits `message` (part `n`) to `text`.
    async fn edit(
        &self,
        message: &OwnedEventId,
        n: u32,
        text: &str,
        live: bool,
        txn: &ruma::TransactionId,
    ) -> Result<(), RoomError> {
        let (_, mention) = self.placement(n);
        let content = message_content(text, Style::Answer, &ReplyTo::Plain, mention);
        let original = if n == 0 {
            self.mentions()
        } else {
            Mentions::new()
        };
        self.outbox
            .send_edit(
                &self.twin,
                &self.room,
                txn,
                message,
                Some(original),
                content,
                live,
            )
            .await
            .map(|_| ())
    }
}

/// What a stream left in the room.
#[derive(Debug, Clone, Default)]
pub(crate) struct Streamed {
    /// The message still being written (marked live), if any.
    pub(crate) message: Option<OwnedEventId>,
    /// The text already in earlier, finished messages (when the answer outgrew one).
    pub(crate) done: String,
    /// Messages sent so far (the next one is part `parts`).
    pub(crate) parts: u32,
}

impl Streamed {
    /// The state after a run before a crash was writing into `message` (its first part).
    pub(crate) fn resumed(message: Option<OwnedEventId>) -> Self {
        Self {
            parts: u32::from(message.is_some()),
            message,
            done: String::new(),
        }
    }
}

/// A running stream: shows the turn's [`LiveEvent`]s in the room until the turn ends.
#[derive(Debug)]
pub(crate) struct LiveReply {
    task: JoinHandle<Streamed>,
}

impl LiveReply {
    /// Starts showing `events` for `target`. `enabled` says whether the room allows live
    /// messages (nothing is sent before it does); `resume` is the message a run of the same
    /// turn before a crash was writing into.
    pub(crate) fn start(
        target: Target,
        events: mpsc::UnboundedReceiver<LiveEvent>,
        enabled: impl Future<Output = bool> + Send + 'static,
        resume: Option<OwnedEventId>,
    ) -> Self {
        Self {
            task: tokio::spawn(run(target, events, enabled, resume)),
        }
    }

    /// Waits until the turn's events end (its [`crate::kernel::live::Live`] is dropped) and
    /// returns what the stream left.
    pub(crate) async fn finish(self) -> Streamed {
        self.task.await.unwrap_or_default()
    }
}

/// The text shown while the answer is written.
#[derive(Debug, Default)]
struct Draft {
    /// The current answer's text (the model's current step).
    answer: String,
    /// What a tool does now.
    status: Option<String>,
    /// The model was asked again: the next text starts a new answer.
    fresh: bool,
    /// Bytes of `answer` already in finished messages.
    offset: usize,
}

impl Draft {
    fn apply(&mut self, event: LiveEvent) {
        match event {
            LiveEvent::Text(piece) => {
                if self.fresh {
                    self.fresh = false;
                    self.answer.clear();
                    self.offset = 0;
                    self.status = None;
                }
                self.answer.push_str(&piece);
            }
            LiveEvent::Tool(status) => self.status = Some(status),
            LiveEvent::NextStep => self.fresh = true,
        }
    }

    /// The current message's text: the answer not yet in finished messages, then what a tool
    /// does now.
    fn view(&self) -> String {
        let text = self.answer.get(self.offset..).unwrap_or("").trim();
        match &self.status {
            Some(status) if text.is_empty() => format!("_⏳ {status}_"),
            Some(status) => format!("{text}\n\n_⏳ {status}_"),
            None => text.to_owned(),
        }
    }

    /// Whether there is enough for a first message.
    fn ready(&self) -> bool {
        self.status.is_some() || self.view().split_whitespace().count() >= FIRST_WORDS
    }
}

async fn run(
    target: Target,
    mut events: mpsc::UnboundedReceiver<LiveEvent>,
    enabled: impl Future<Output = bool> + Send + 'static,
    resume: Option<OwnedEventId>,
) -> Streamed {
    let mut draft = Draft::default();
    let mut state = Streamed::resumed(resume);
    let mut shown = String::new();
    let mut last_sent: Option<Instant> = None;
    let nonce = nonce();
    let mut edits = 0u32;
    let mut enabled = Box::pin(enabled);
    let mut allowed: Option<bool> = None;
    loop {
        let due = last_sent.map(|t| t + EDIT_EVERY);
        let waiting = allowed == Some(true) && state.message.is_some() && draft.view() != shown;
        tokio::select! {
            ok = &mut enabled, if allowed.is_none() => {
                allowed = Some(ok);
                if !ok {
                    tracing::debug!(room = %target.room, "live messages are off here");
                }
            }
            event = events.recv() => match event {
                Some(event) => draft.apply(event),
                None => break,
            },
            () = sleep_until(due), if waiting => {}
        }
        if allowed != Some(true) {
            continue;
        }
        if last_sent.is_some_and(|t| t.elapsed() < EDIT_EVERY) {
            continue;
        }
        let step = send_step(
            &target, &mut draft, &mut state, &mut shown, &nonce, &mut edits,
        )
        .await;
        if step {
            last_sent = Some(Instant::now());
        }
    }
    state
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

/// Sends what changed: the first message, an edit, or (when the text outgrew one message) a
/// final edit and a new message. `true` when something was sent.
async fn send_step(
    target: &Target,
    draft: &mut Draft,
    state: &mut Streamed,
    shown: &mut String,
    nonce: &str,
    edits: &mut u32,
) -> bool {
    // Finish the current message when the answer outgrew it; the rest goes on below.
    let current = draft.answer.get(draft.offset..).unwrap_or("");
    if current.len() > MAX_MESSAGE_BYTES {
        let (head, _) = split(current, MAX_MESSAGE_BYTES);
        let head = head.to_owned();
        let finished = match &state.message {
            Some(message) => {
                let txn = edit_txn(target, nonce, edits);
                target
                    .edit(
                        message,
                        state.parts.saturating_sub(1),
                        head.trim(),
                        false,
                        &txn,
                    )
                    .await
            }
            None => target
                .send_part(state.parts, head.trim(), false)
                .await
                .map(|_| {
                    state.parts += 1;
                }),
        };
        if let Err(err) = finished {
            tracing::warn!(%err, "cannot finish a streamed message");
            return true;
        }
        draft.offset += head.len();
        state.done.push_str(&head);
        state.message = None;
        shown.clear();
    }
    let view = draft.view();
    if view.trim().is_empty() || view == *shown {
        return false;
    }
    match state.message.clone() {
        None => {
            if !draft.ready() {
                return false;
            }
            match target.send_part(state.parts, &view, true).await {
                Ok(message) => {
                    state.parts += 1;
                    if let Err(err) = target
                        .store
                        .set_live_reply(&target.twin, &target.trigger, &target.room, &message)
                        .await
                    {
                        tracing::warn!(%err, "cannot record the message being streamed");
                    }
                    state.message = Some(message);
                    *shown = view;
                }
                Err(err) => tracing::warn!(%err, "cannot send the first streamed message"),
            }
        }
        Some(message) => {
            let txn = edit_txn(target, nonce, edits);
            let part = state.parts.saturating_sub(1);
            match target.edit(&message, part, &view, true, &txn).await {
                Ok(()) => *shown = view,
                Err(err) => tracing::warn!(%err, "cannot edit the streamed message"),
            }
        }
    }
    true
}

fn edit_txn(target: &Target, nonce: &str, edits: &mut u32) -> ruma::OwnedTransactionId {
    *edits += 1;
    let cause = format!("{}:{nonce}:{edits}", target.trigger);
    txn_id_for(target.twin.as_str(), &cause, TxnPart::LiveEdit)
}

/// Sends the final text of an answer: the last edit of the message being written (without
/// the live mark), then further messages for what does not fit in it; without a stream, the
/// answer as new messages. Forgets the live reply once done.
pub(crate) async fn deliver(
    target: &Target,
    streamed: Streamed,
    reply: &str,
) -> Result<(), RoomError> {
    // What finished messages hold is not said again (unless the answer changed since).
    let rest = match reply.strip_prefix(streamed.done.as_str()) {
        Some(rest) if !streamed.done.is_empty() => rest.trim_start(),
        _ => reply,
    };
    let mut parts = split_all(rest, MAX_MESSAGE_BYTES).into_iter();
    let mut n = streamed.parts;
    if let Some(message) = &streamed.message {
        let first = parts.next().unwrap_or("…");
        let txn = txn_id_for(
            target.twin.as_str(),
            target.trigger.as_str(),
            TxnPart::FinalEdit,
        );
        target
            .edit(message, n.saturating_sub(1), first, false, &txn)
            .await?;
    }
    for part in parts {
        target.send_part(n, part, false).await?;
        n += 1;
    }
    if streamed.message.is_some()
        && let Err(err) = target
            .store
            .clear_live_reply(&target.twin, &target.trigger)
            .await
    {
        tracing::debug!(%err, "cannot forget a live reply");
    }
    Ok(())
}

/// `text` cut into pieces of at most `max` bytes, at paragraph, line or word ends where it
/// can; always at least one piece.
fn split_all(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text.trim();
    loop {
        let (head, tail) = split(rest, max);
        pieces.push(head.trim());
        rest = tail.trim_start();
        if rest.is_empty() {
            break;
        }
    }
    pieces
}

/// The longest head of `text` of at most `max` bytes that ends at a paragraph, line or word
/// end (or, failing those, a character end), and the rest.
fn split(text: &str, max: usize) -> (&str, &str) {
    if text.len() <= max {
        return (text, "");
    }
    let mut limit = max;
    while !text.is_char_boundary(limit) {
        limit -= 1;
    }
    let window = &text[..limit];
    let at = ["\n\n", "\n", " "]
        .iter()
        .find_map(|sep| {
            window
                .rfind(sep)
                .filter(|&i| i > max / 2)
                .map(|i| i + sep.len())
        })
        .unwrap_or(limit);
    let at = if at == 0 { limit.max(1) } else { at };
    let mut at = at;
    while !text.is_char_boundary(at) {
        at += 1;
    }
    text.split_at(at)
}

fn nonce() -> String {
    use rand::Rng;
    let bytes: [u8; 6] = rand::thread_rng().r#gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a room's live messaging state allows live messages: only an explicit
/// `"enabled": false` turns them off.
pub(crate) fn allows_live(state: Option<&serde_json::Value>) -> bool {
    state.and_then(|s| s.get("enabled")) != Some(&serde_json::Value::Bool(false))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn long_texts_are_cut_at_paragraphs_then_words_then_characters() {
        assert_eq!(split_all("short", 10), vec!["short"]);
        let text = format!("{}\n\n{}", "a".repeat(8), "b".repeat(8));
        assert_eq!(split_all(&text, 12), vec!["aaaaaaaa", "bbbbbbbb"]);
        let words = "one two three four five six";
        for piece in split_all(words, 10) {
            assert!(piece.len() <= 10 && !piece.starts_with(' '), "{piece:?}");
        }
        assert_eq!(split_all(words, 10).join(" "), words);
        // No space at all: cut at a character end, never inside one.
        let emoji = "😀".repeat(10);
        let pieces = split_all(&emoji, 9);
        assert!(pieces.iter().all(|p| p.len() <= 9 && !p.is_empty()));
        assert_eq!(pieces.concat(), emoji);
    }

    #[test]
    fn the_draft_shows_the_current_answer_and_what_tools_do() {
        let mut draft = Draft::default();
        draft.apply(LiveEvent::Text("Let".into()));
        assert!(!draft.ready(), "not a few words yet");
        draft.apply(LiveEvent::Text(" me look it".into()));
        assert!(draft.ready());
        draft.apply(LiveEvent::Tool("reading `a.md`…".into()));
        assert_eq!(draft.view(), "Let me look it\n\n_⏳ reading `a.md`…_");
        draft.apply(LiveEvent::NextStep);
        assert_eq!(
            draft.view(),
            "Let me look it\n\n_⏳ reading `a.md`…_",
            "until new text"
        );
        draft.apply(LiveEvent::Text("It says hi.".into()));
        assert_eq!(draft.view(), "It says hi.");
    }

    #[test]
    fn only_an_explicit_false_turns_live_messages_off() {
        assert!(allows_live(None));
        assert!(allows_live(Some(&json!({}))));
        assert!(allows_live(Some(&json!({"enabled": true}))));
        assert!(allows_live(Some(&json!({"enabled": "false"}))));
        assert!(!allows_live(Some(&json!({"enabled": false}))));
    }
}
