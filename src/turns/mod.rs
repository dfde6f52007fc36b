//! The turn runner: one kernel turn for one message, within a deadline, its effects recorded
//! before anything is sent, so a turn never runs twice.
//!
//! A turn is: limits (rate, bot-to-bot), typing and read receipt, context (session history,
//! room log, names), the kernel within `rooms.turn_deadline_secs`, then one database
//! transaction that appends the turn's messages to the session and records the turn (reply and
//! the requests of its tools). Only then is the reply sent (the outbox retries the send) and
//! the requests carried out. A failed send, a crash or the same event read again finds the
//! record and finishes from there instead of asking the model again.

mod bridged;
mod compact;
mod held;
mod input;
mod live;
mod media;
mod typing;

use std::{collections::HashMap, sync::Arc, time::Duration};

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, UserId};
use tokio::sync::Semaphore;

pub(crate) use self::input::compose_input;
use crate::{
    budget::{BudgetKeeper, Exceeded},
    config::{AccessConfig, Config},
    home::Home,
    kernel::{Audience, Kernel, Message, ToolRequest, Turn, live::Live},
    matrix::{MatrixClient, TxnPart, txn_id_for},
    metrics::{Metrics, TurnErrorKind},
    negotiator::Negotiator,
    outbox::{Outbox, ReplyTo},
    policy::{LimitScope, Verdict},
    room::{
        RoomError,
        decide::{Speaker, TurnJob},
        limits::Limits,
    },
    storage::{SessionAudience, Store, TurnRecord, TurnRow},
    twin::{Twins, bridge_settings_of, policy_of, settings_of},
};

/// Attempts at recording a finished turn before its reply is sent unrecorded.
const RECORD_ATTEMPTS: u32 = 3;

/// What a room reads when a turn ran past its deadline.
const DEADLINE_REPLY: &str =
    "⏱️ That took me too long, so I stopped. Please try again, perhaps with a smaller request.";

/// Runs kernel turns.
#[derive(Debug)]
pub struct TurnRunner {
    store: Store,
    matrix: MatrixClient,
    twins: Arc<Twins>,
    kernel: Arc<Kernel>,
    outbox: Arc<Outbox>,
    negotiator: Arc<Negotiator>,
    limits: Arc<Limits>,
    metrics: Arc<Metrics>,
    budgets: Arc<BudgetKeeper>,
    access_defaults: AccessConfig,
    slots: Semaphore,
    history_limit: usize,
    context_messages: usize,
    deadline: Duration,
    /// `llm.stream`.
    stream: bool,
    /// `rooms.compact_at_tokens` and what it needs.
    compaction: compact::Compaction,
    /// `[media]`: what photos, files and voice messages become.
    media: media::MediaStage,
}

/// The parts of a turn's outcome that are kept.
struct Finished {
    reply: String,
    messages: Vec<Message>,
    requests: Vec<ToolRequest>,
    /// The answer being streamed into the room, if it is.
    live: Option<live::LiveReply>,
}

impl TurnRunner {
    /// A runner configured by `[rooms]` and `[access]`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        matrix: MatrixClient,
        twins: Arc<Twins>,
        kernel: Arc<Kernel>,
        outbox: Arc<Outbox>,
        negotiator: Arc<Negotiator>,
        limits: Arc<Limits>,
        metrics: Arc<Metrics>,
        budgets: Arc<BudgetKeeper>,
        config: &Config,
    ) -> Self {
        Self {
            store,
            matrix,
            twins,
            kernel,
            outbox,
            negotiator,
            limits,
            metrics,
            budgets,
            access_defaults: config.access.clone(),
            slots: Semaphore::new(config.rooms.max_concurrent_turns.max(1)),
            history_limit: config.rooms.history_messages,
            context_messages: config.rooms.context_messages,
            deadline: Duration::from_secs(config.rooms.turn_deadline_secs.max(1)),
            stream: config.llm.stream,
            compaction: compact::Compaction::new(
                config.rooms.compact_at_tokens,
                config.rooms.compact_keep_messages,
            ),
            media: media::MediaStage::new(config),
        }
    }

    /// Runs a turn for `job`, or finishes one recorded before (its reply unsent, its requests
    /// not carried out). Errors are those before the kernel ran; afterwards nothing is
    /// returned as an error, since redoing the turn would run the model and its tools twice.
    pub async fn run(&self, job: &TurnJob) -> Result<(), RoomError> {
        if let Some(row) = self.store.turn(&job.twin, &job.event_id).await? {
            self.finish_recorded(job, row).await;
            return Ok(());
        }
        if job.speaker == Speaker::Other && !self.within_limits(job).await {
            return Ok(());
        }
        if job.from_bot && !self.limits.allow_bot_turn(&job.room) {
            tracing::info!(room = %job.room, "bot-to-bot turn bound reached; not answering");
            return Ok(());
        }
        let twin = self.twins.ensure(&job.owner).await?;
        if job.speaker == Speaker::Owner {
            self.outbox
                .deliver_owner_notices(&job.twin, &job.owner)
                .await;
        }
        if let Some(over) = self.budgets.check(&job.twin, twin.home.clone()).await? {
            self.out_of_budget(job, &over).await;
            return Ok(());
        }
        if let Err(err) = self
            .matrix
            .mark_read(&job.twin, &job.room, &job.event_id)
            .await
        {
            tracing::debug!(%err, "read receipt failed");
        }
        let stop_typing =
            typing::spawn_typing(self.matrix.clone(), job.twin.clone(), job.room.clone());
        let started = std::time::Instant::now();
        let prepared = match self.prepare_media(job, &twin.home).await {
            Ok(prepared) => prepared,
            Err(notice) => {
                let _ = stop_typing.send(());
                self.media_notice(job, &notice).await;
                self.typing_off(job).await;
                return Ok(());
            }
        };
        let resume = self.live_reply_of(job).await;
        let result = self.think(job, &twin.home, resume.clone(), prepared).await;
        let _ = stop_typing.send(());
        let mut finished = match result {
            Ok(finished) => finished,
            Err(err) => {
                self.typing_off(job).await;
                return Err(err);
            }
        };
        self.metrics.turns.inc();
        self.metrics
            .turn_duration
            .observe(started.elapsed().as_secs_f64());
        let streamed = match finished.live.take() {
            Some(live) => live.finish().await,
            None => live::Streamed::resumed(resume),
        };
        let recorded = self.record(job, &twin.home, &finished).await;
        self.send_reply(job, &finished.reply, streamed).await;
        if recorded && let Err(err) = self.store.set_turn_sent(&job.twin, &job.event_id).await {
            tracing::warn!(%err, "cannot mark a turn's reply sent");
        }
        self.typing_off(job).await;
        self.carry_out(job, &finished.requests, job.event_id.as_str())
            .await;
        if recorded
            && let Err(err) = self
                .store
                .set_turn_requests_done(&job.twin, &job.event_id)
                .await
        {
            tracing::warn!(%err, "cannot mark a turn's requests done");
        }
        Ok(())
    }

    /// Stops the twin's typing notification in `job`'s room.
    async fn typing_off(&self, job: &TurnJob) {
        if let Err(err) = self.matrix.set_typing(&job.twin, &job.room, None).await {
            tracing::debug!(%err, "stopping typing failed");
        }
    }

    /// A turn the token budget does not allow: no model call; the owner is told once per
    /// period, in their DM (whoever spoke; others get no answer and learn nothing).
    async fn out_of_budget(&self, job: &TurnJob, over: &Exceeded) {
        tracing::info!(twin = %job.twin, period = %over.period.key, used = over.used, limit = over.limit, "token budget used up; not calling the model");
        match self.budgets.claim_notice(&job.twin, over).await {
            Ok(true) => {
                let key = format!("budget:{}", over.period.key);
                if let Err(err) = self
                    .outbox
                    .tell_owner(&job.twin, &job.owner, &key, &over.notice())
                    .await
                {
                    tracing::warn!(%err, "cannot tell the owner that the token budget is used up");
                }
            }
            Ok(false) => {}
            Err(err) => tracing::warn!(%err, "cannot record the budget notice"),
        }
    }

    /// The context and the kernel, within the deadline. A failed or timed-out model call is a
    /// reply too (the room is told); only a failure to gather the context is an error.
    async fn think(
        &self,
        job: &TurnJob,
        home: &Arc<Home>,
        resume: Option<OwnedEventId>,
        prepared: media::Prepared,
    ) -> Result<Finished, RoomError> {
        let media::Prepared {
            text,
            images,
            transcript,
        } = prepared;
        let session = self
            .store
            .current_session(&job.room, &job.twin, session_audience(job))
            .await?;
        // Someone else's turn sees nothing said before they joined (what the room's history
        // may not show them, and what earlier visitors asked), however the model is asked.
        let joined_since = match job.speaker {
            Speaker::Other => self.store.joined_since(&job.room, &job.sender).await?,
            Speaker::Owner => None,
        };
        let twin_settings = settings_of(home.clone()).await?;
        let history: Vec<Message> = match job.speaker {
            Speaker::Owner => {
                self.owner_history(job, home, session.id, &text, twin_settings.model.clone())
                    .await?
            }
            Speaker::Other => self
                .store
                .history_window(session.id, self.history_limit as i64, joined_since)
                .await?
                .iter()
                .filter_map(|json| serde_json::from_str(json).ok())
                .collect(),
        };
        let names: HashMap<OwnedUserId, String> = self
            .store
            .room_members(&job.room)
            .await?
            .into_iter()
            .filter_map(|m| m.display_name.map(|name| (m.user_id, name)))
            .collect();
        let mut log = if job.group {
            self.store
                .recent_log(&job.room, &job.event_id, self.context_messages as i64)
                .await?
        } else {
            Vec::new()
        };
        if let Some(since) = joined_since {
            log.retain(|entry| entry.ts >= since);
        }
        let mut input = compose_input(&text, &job.sender, job.speaker, job.group, &log, &names);
        // Others' text is in the context of an owner's turn in a group room: risky calls wait
        // for the owner's approval in their DM.
        let mut exposed = job.group && job.speaker == Speaker::Owner;
        if job.speaker == Speaker::Owner && !job.group {
            let bridges = bridge_settings_of(home.clone()).await?;
            if let Some(chats) = bridged::named_chats(
                &self.store,
                &job.twin,
                &bridges,
                &text,
                crate::storage::now_ms(),
            )
            .await?
            {
                // Remote people's words are in this turn now: it is exposed like a group's.
                input = format!("{chats}Your owner's message:\n{input}");
                exposed = true;
            }
        }
        let (_, settings) =
            policy_of(home.clone(), &job.owner, &job.room, &self.access_defaults).await?;
        let (context, peers_in_context) = match job.speaker {
            Speaker::Owner => match self
                .negotiator
                .meetings_context(&job.twin, home.clone())
                .await
            {
                Some((brief, peers)) => (Some(brief), Some(peers)),
                None => (None, None),
            },
            Speaker::Other => (None, None),
        };
        // Group rooms and bridged chats get one message unless the owner turned streaming on
        // there: other twins and bots act on a message when it arrives (a mention in a later
        // edit reaches nobody, and notifies nobody), and a bridge relays every edit to the
        // network, which rate-limits edits and marks each message "edited".
        let portal = self.store.portal(&job.room).await?.is_some();
        // A voice message's answer comes in one message, its transcript quoted above it.
        let streamed = self.stream
            && transcript.is_none()
            && twin_settings.stream.unwrap_or(true)
            && settings.stream.unwrap_or(!portal && !job.group)
            && self.kernel.is_configured();
        let (live, live_reply) = if streamed {
            // Tool progress names files only where the owner alone reads.
            let (live, events) = Live::channel(!job.group && job.speaker == Speaker::Owner);
            let reply =
                live::LiveReply::start(self.target(job), events, self.live_allowed(job), resume);
            (Some(live), Some(reply))
        } else {
            (None, None)
        };
        let turn = Turn {
            room_id: job.room.to_string(),
            history,
            input: input.clone(),
            images,
            audience: match job.speaker {
                Speaker::Owner => Audience::Owner,
                Speaker::Other => Audience::Public {
                    // The MXID only: a display name is anyone's text and stays out of the
                    // system prompt.
                    person: crate::kernel::quote::one_line(job.sender.as_str(), 255),
                },
            },
            allowed_tools: settings.tools.clone(),
            model: twin_settings.model,
            context,
            exposed,
            approvals: twin_settings.approvals,
            peers_in_context,
            live,
        };
        let kernel_turn = async {
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|e| RoomError::Internal(e.to_string()))?;
            Ok::<_, RoomError>(self.kernel.run_turn(home.clone(), turn).await)
        };
        let only_input = || vec![Message::user(input.clone())];
        let mut finished = match tokio::time::timeout(self.deadline, kernel_turn).await {
            Ok(Ok(Ok(outcome))) => {
                self.budgets
                    .record(
                        &job.twin,
                        Some(&job.room),
                        job.event_id.as_str(),
                        &outcome.usage,
                    )
                    .await;
                Finished {
                    reply: outcome.reply,
                    messages: outcome.messages,
                    requests: outcome.requests,
                    live: live_reply,
                }
            }
            Ok(Ok(Err(err))) => {
                tracing::warn!(room = %job.room, %err, "turn failed");
                self.metrics.turn_error(TurnErrorKind::Provider);
                Finished {
                    // Details only for the owner in their own DM; a fixed text elsewhere.
                    reply: err.room_message(!job.group && job.speaker == Speaker::Owner),
                    messages: only_input(),
                    requests: Vec::new(),
                    live: live_reply,
                }
            }
            Ok(Err(err)) => return Err(err),
            Err(_) => {
                tracing::warn!(room = %job.room, deadline = ?self.deadline, "turn ran past its deadline");
                self.metrics.turn_error(TurnErrorKind::Deadline);
                Finished {
                    reply: DEADLINE_REPLY.to_owned(),
                    messages: only_input(),
                    requests: Vec::new(),
                    live: live_reply,
                }
            }
        };
        // A voice message: its answer quotes what was heard, and is also spoken when the owner
        // asked for spoken replies.
        if let Some(transcript) = &transcript {
            if job.speaker == Speaker::Owner
                && self.media.can_speak()
                && twin_settings.voice_replies == Some(true)
            {
                finished.requests.push(ToolRequest::SpeakReply {
                    text: finished.reply.clone(),
                });
            }
            finished.reply = media::with_transcript(transcript, &finished.reply);
        }
        Ok(finished)
    }

    /// Records the finished turn (session messages and the turn, in one database transaction),
    /// then its transcript in the home. Retried a few times; `false` when it could not be
    /// recorded (the reply is still sent: losing it would be worse than an unrecorded turn).
    async fn record(&self, job: &TurnJob, home: &Arc<Home>, finished: &Finished) -> bool {
        let messages: Vec<String> = finished
            .messages
            .iter()
            .filter_map(|m| serde_json::to_string(m).ok())
            .collect();
        let requests = serde_json::to_string(&finished.requests).unwrap_or_else(|_| "[]".into());
        let mut attempt = 0;
        let recorded = loop {
            attempt += 1;
            let result = async {
                let session = self
                    .store
                    .current_session(&job.room, &job.twin, session_audience(job))
                    .await?;
                self.store
                    .record_turn(&TurnRecord {
                        session_id: session.id,
                        messages: &messages,
                        twin_id: &job.twin,
                        event_id: &job.event_id,
                        room_id: &job.room,
                        reply: &finished.reply,
                        requests: &requests,
                    })
                    .await
            }
            .await;
            match result {
                Ok(_) => break true,
                Err(err) if attempt < RECORD_ATTEMPTS => {
                    tracing::warn!(%err, attempt, "cannot record the turn yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                }
                Err(err) => {
                    tracing::error!(%err, room = %job.room, "the turn could not be recorded; sending its reply anyway");
                    self.metrics.turn_error(TurnErrorKind::Storage);
                    break false;
                }
            }
        };
        if let Err(err) = append_transcript(home, job, &finished.messages).await {
            tracing::warn!(%err, room = %job.room, "cannot append to the room's transcript");
        }
        recorded
    }

    /// Sends the reply (the outbox retries): the final edit of the message it was streamed
    /// into, or new messages. A reply that cannot be sent is logged, the turn stays recorded
    /// as unsent and is sent when the event is handled again.
    async fn send_reply(&self, job: &TurnJob, reply: &str, streamed: live::Streamed) {
        if let Err(err) = live::deliver(&self.target(job), streamed, reply).await {
            tracing::error!(%err, room = %job.room, "the answer could not be sent");
            self.metrics.turn_error(TurnErrorKind::Send);
        }
    }

    /// The message an earlier run of `job`'s turn was streaming its answer into, if any (a
    /// lookup that fails is logged and counts as none).
    async fn live_reply_of(&self, job: &TurnJob) -> Option<OwnedEventId> {
        match self.store.live_reply(&job.twin, &job.event_id).await {
            Ok(resume) => resume,
            Err(err) => {
                tracing::warn!(%err, "cannot read whether this turn's answer was being streamed");
                None
            }
        }
    }

    /// Where the answer of `job` goes.
    fn target(&self, job: &TurnJob) -> live::Target {
        let mention = (job.group || job.speaker == Speaker::Other).then(|| job.sender.clone());
        live::Target {
            outbox: self.outbox.clone(),
            store: self.store.clone(),
            twin: job.twin.clone(),
            room: job.room.clone(),
            trigger: job.event_id.clone(),
            reply: job.reply.clone(),
            mention,
        }
    }

    /// Whether the room allows live messages (its MSC4357 state); when that cannot be read,
    /// the answer comes in one message.
    fn live_allowed(
        &self,
        job: &TurnJob,
    ) -> impl std::future::Future<Output = bool> + Send + 'static {
        let (matrix, twin, room) = (self.matrix.clone(), job.twin.clone(), job.room.clone());
        async move {
            match matrix
                .state_content(&twin, &room, live::LIVE_MESSAGING_STATE)
                .await
            {
                Ok(state) => live::allows_live(state.as_ref()),
                Err(err) => {
                    tracing::debug!(%err, "cannot read the room's live messaging state");
                    false
                }
            }
        }
    }

    /// Finishes a turn recorded before: sends its reply and carries out its requests if that
    /// did not happen yet.
    async fn finish_recorded(&self, job: &TurnJob, row: TurnRow) {
        if !row.sent {
            tracing::info!(room = %job.room, "sending the reply of a turn recorded before");
            let resume = self.live_reply_of(job).await;
            self.send_reply(job, &row.reply, live::Streamed::resumed(resume))
                .await;
            if let Err(err) = self.store.set_turn_sent(&row.twin_id, &row.event_id).await {
                tracing::warn!(%err, "cannot mark a turn's reply sent");
            }
        }
        if !row.requests_done {
            let requests: Vec<ToolRequest> =
                serde_json::from_str(&row.requests).unwrap_or_default();
            self.carry_out(job, &requests, job.event_id.as_str()).await;
            if let Err(err) = self
                .store
                .set_turn_requests_done(&row.twin_id, &row.event_id)
                .await
            {
                tracing::warn!(%err, "cannot mark a turn's requests done");
            }
        }
    }

    /// Carries out the requests of a turn's tools (only offered in the owner's turns); one that
    /// fails is reported in the room. `cause` (the turn's event) and each request's place make
    /// the keys that keep every request once-only.
    async fn carry_out(&self, job: &TurnJob, requests: &[ToolRequest], cause: &str) {
        for (i, request) in requests.iter().enumerate() {
            let cause = format!("{cause}:{i}");
            let done = match request {
                ToolRequest::ProposeMeeting(ask) => self
                    .negotiator
                    .start_meeting(&job.twin, &job.owner, ask)
                    .await
                    .map(|()| None),
                ToolRequest::AnswerMeeting {
                    negotiation_id,
                    accept,
                } => self
                    .negotiator
                    .answer_meeting(
                        &job.twin,
                        &job.owner,
                        negotiation_id.as_deref(),
                        *accept,
                        &cause,
                    )
                    .await
                    .map(|answer| answer.err()),
                ToolRequest::CancelMeeting { negotiation_id } => self
                    .negotiator
                    .cancel_meeting(&job.twin, &job.owner, negotiation_id, &cause)
                    .await
                    .map(|answer| answer.err()),
                ToolRequest::Hold(_) | ToolRequest::ProposePolicy(_) => {
                    self.ask_owner(job, request, &cause).await.map(|()| None)
                }
                ToolRequest::SendFile {
                    room,
                    path,
                    caption,
                } => {
                    self.send_home_file(job, room, path, caption.as_deref(), &cause)
                        .await
                }
                ToolRequest::SpeakReply { text } => self.speak_reply(job, text, &cause).await,
            };
            let problem = match done {
                Ok(problem) => problem,
                Err(err) => {
                    tracing::error!(%err, room = %job.room, "a request of the turn failed");
                    Some(format!("⚠️ That did not work: {}", err.room_text()))
                }
            };
            if let Some(problem) = problem {
                let txn = txn_id_for(job.twin.as_str(), &cause, TxnPart::RequestProblem);
                if let Err(err) = self
                    .outbox
                    .send_notice(&job.twin, &job.room, &txn, &problem, &ReplyTo::Plain, None)
                    .await
                {
                    tracing::warn!(%err, "could not report a failed request");
                }
            }
        }
    }

    /// Applies the rate limits to a message from someone other than the owner; tells them once
    /// when they exceed it. `false`: do not answer.
    async fn within_limits(&self, job: &TurnJob) -> bool {
        match self.limits.check_rate(&job.sender) {
            Verdict::Allow => true,
            Verdict::Silent => false,
            Verdict::Notify { retry_after, scope } => {
                let who = match scope {
                    LimitScope::Sender => "you are".to_owned(),
                    LimitScope::Server => {
                        format!("people on {} are", job.sender.server_name())
                    }
                };
                let text = format!(
                    "⏳ {who} sending me messages faster than I can answer. I'll answer again \
                     in about {} seconds; messages until then are not answered.",
                    retry_after.as_secs().max(1)
                );
                let txn = txn_id_for(
                    job.twin.as_str(),
                    job.event_id.as_str(),
                    TxnPart::RateLimitNotice,
                );
                if let Err(err) = self
                    .outbox
                    .send_notice(
                        &job.twin,
                        &job.room,
                        &txn,
                        &text,
                        &ReplyTo::Reply(job.event_id.clone()),
                        Some(&job.sender),
                    )
                    .await
                {
                    tracing::warn!(%err, "rate limit notice failed");
                }
                false
            }
        }
    }
}

/// Whose session a turn continues: the owner's and everyone else's are apart.
fn session_audience(job: &TurnJob) -> SessionAudience {
    match job.speaker {
        Speaker::Owner => SessionAudience::Owner,
        Speaker::Other => SessionAudience::Public,
    }
}

/// Appends a turn's messages to the room's transcript in the home (committed), where the owner
/// can read what the twin said to anyone.
async fn append_transcript(
    home: &Arc<Home>,
    job: &TurnJob,
    messages: &[Message],
) -> Result<(), RoomError> {
    let home = home.clone();
    let room_name = job.room.to_string();
    let lines: Vec<serde_json::Value> = messages
        .iter()
        .map(|message| {
            serde_json::json!({
                "ts": now_millis(),
                "event_id": job.event_id.as_str(),
                "sender": job.sender.as_str(),
                "message": message,
            })
        })
        .collect();
    tokio::task::spawn_blocking(move || -> Result<(), crate::home::HomeError> {
        for line in &lines {
            home.append_transcript(&room_name, line)?;
        }
        home.commit(&format!("session: conversation in {room_name}"))?;
        Ok(())
    })
    .await
    .map_err(|e| RoomError::Internal(e.to_string()))??;
    Ok(())
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// A turn for the first message of someone the owner just approved (pairing).
pub(crate) fn first_message_job(
    twin: &UserId,
    owner: &UserId,
    room: OwnedRoomId,
    event_id: OwnedEventId,
    sender: OwnedUserId,
    text: String,
) -> TurnJob {
    TurnJob {
        twin: twin.to_owned(),
        owner: owner.to_owned(),
        room,
        event_id,
        sender,
        text,
        speaker: Speaker::Other,
        reply: ReplyTo::Plain,
        group: false,
        from_bot: false,
        media: None,
    }
}
