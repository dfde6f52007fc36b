//! The negotiator: drives AI-to-AI negotiations. The pure state machine
//! (`crate::protocol::Negotiation`) is fed with received protocol events, the owner's requests
//! and answers, and deadline ticks; its outputs are carried out (events sent through the
//! outbox, calendar files written and committed, owners told). A negotiation is saved after
//! every step, so it survives restarts and federation outages.
//!
//! Every input reaches it through a room queue (protocol events and turns in their rooms,
//! ticks queued into the negotiation's room by the pipeline), so a negotiation's steps are in
//! order with the rest of its room; one lock per twin keeps steps of one twin from different
//! rooms apart.

mod busy;
mod locks;
mod rate;

use std::sync::Arc;

use chrono::{TimeDelta, Utc};

pub(crate) use self::locks::TwinLocks;
use ruma::{EventId, OwnedRoomId, OwnedUserId, RoomId, UserId};

use crate::{
    a2a::{
        self, MeetingPolicy,
        wording::{self, OwnerMessage},
    },
    budget::BudgetKeeper,
    calendar::{Calendar, NewEvent},
    config::AccessConfig,
    home::Home,
    kernel::{Kernel, MeetingAsk},
    matrix::{TxnPart, txn_id_for},
    outbox::Outbox,
    protocol::{
        Interval, Negotiation, NegotiationId, ProtocolEvent,
        events::{Body, Reject, RejectCode},
        negotiation::{
            CalendarWrite, Context, Input, Notice, Output, Party, Phase, Policy, Received,
            StartMeeting,
        },
        parse,
    },
    room::RoomError,
    storage::{NegotiationRow, Store},
    twin::{Twins, meeting_policy_of, model_of, policy_of},
};

/// The policy for inputs from the twin's own side (its owner, its clock): nothing there is a
/// stranger to be allowed, and nothing is accepted on the owner's behalf.
const OWN_SIDE: Policy = Policy {
    allowed: true,
    auto_accept: false,
};

/// Ticks of one negotiation that may fail in a row before it is no longer ticked.
pub const MAX_TICK_FAILURES: i64 = 5;

/// How long the model may take to word a notice before the plain wording is sent.
const REWORD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// How far ahead busy times are read (the protocol's longest window).
const HORIZON_DAYS: i64 = 92;
/// Most open negotiations with one peer twin; a further hello from it is refused.
pub const MAX_OPEN_PER_PEER: usize = 3;
/// Most open negotiations of one twin; a further hello from anyone is refused.
pub const MAX_OPEN_PER_TWIN: usize = 20;

/// Where a step runs.
struct Step<'a> {
    twin: &'a UserId,
    owner: &'a UserId,
    room: &'a RoomId,
    home: Arc<Home>,
    policy: MeetingPolicy,
}

fn internal(err: impl std::fmt::Display) -> RoomError {
    RoomError::Internal(err.to_string())
}

/// Drives every twin's negotiations.
#[derive(Debug)]
pub struct Negotiator {
    store: Store,
    twins: Arc<Twins>,
    kernel: Arc<Kernel>,
    outbox: Arc<Outbox>,
    /// Whether the model may word a notice (the twin's token budget), and what it used.
    budgets: Arc<BudgetKeeper>,
    /// One negotiation step of a twin at a time.
    locks: TwinLocks,
    access_defaults: AccessConfig,
    /// Protocol events accepted per peer and twin.
    rate: rate::ProtocolRate,
    /// Owners' busy times per calendar version.
    busy: Arc<busy::BusyCache>,
}

impl Negotiator {
    /// A negotiator sending through `outbox`; `kernel` words the owners' notices.
    pub fn new(
        store: Store,
        twins: Arc<Twins>,
        kernel: Arc<Kernel>,
        outbox: Arc<Outbox>,
        budgets: Arc<BudgetKeeper>,
        access_defaults: AccessConfig,
    ) -> Self {
        Self {
            store,
            twins,
            kernel,
            outbox,
            budgets,
            locks: TwinLocks::default(),
            access_defaults,
            rate: rate::ProtocolRate::default(),
            busy: Arc::default(),
        }
    }

    /// Starts a negotiation the owner asked for (`propose_meeting`).
    pub async fn start_meeting(
        &self,
        twin: &UserId,
        owner: &UserId,
        ask: &MeetingAsk,
    ) -> Result<(), RoomError> {
        let suffix = self.twins.naming().suffix().to_owned();
        let Some(peer_twin) = a2a::twin_of(&ask.with, &suffix) else {
            return self
                .outbox
                .tell_owner(
                    twin,
                    owner,
                    "start",
                    &format!("I can't find {}'s twin.", ask.with),
                )
                .await;
        };
        let window = Interval::new(ask.window_start, ask.window_end).map_err(internal)?;
        let id = NegotiationId::new(random_id()).map_err(internal)?;
        let _one_at_a_time = self.locks.lock(twin).await;
        let room = self.a2a_room(twin, &peer_twin).await?;
        let step = self.step_for(twin, owner, &room).await?;
        let negotiation = Negotiation::new(
            id,
            Party {
                owner: owner.to_owned(),
                twin: twin.to_owned(),
            },
            step.policy.config,
        );
        let input = Input::Start(StartMeeting {
            peer: Party {
                owner: ask.with.clone(),
                twin: peer_twin.clone(),
            },
            title: ask.title.clone(),
            duration_minutes: ask.duration_minutes,
            window,
        });
        let policy = OWN_SIDE;
        self.run_step(&step, negotiation, input, policy, "start")
            .await
    }

    /// A protocol event arrived in a room of `twin`.
    #[allow(clippy::too_many_arguments)]
    pub async fn on_protocol_event(
        &self,
        twin: &UserId,
        owner: &UserId,
        room: &RoomId,
        event_id: &EventId,
        sender: &UserId,
        event_type: &str,
        content: &serde_json::Value,
    ) -> Result<(), RoomError> {
        if !self.rate.allow(twin, sender) {
            // A flood from one peer: dropped without an answer (answering would be a flood
            // of our own), logged once a window.
            return Ok(());
        }
        let _one_at_a_time = self.locks.lock(twin).await;
        let step = self.step_for(twin, owner, room).await?;
        let event = match parse(event_type, content) {
            Ok(event) => event,
            Err(rejection) => {
                tracing::warn!(%room, %sender, event_type, code = ?rejection.code, "protocol event rejected");
                if let Some(reply) = rejection.reply(Some(event_id.as_str())) {
                    self.send_protocol(&step, &reply, event_id.as_str()).await?;
                }
                return Ok(());
            }
        };
        let Some(id) = event.negotiation_id().cloned() else {
            return Ok(());
        };
        let hello = match &event {
            ProtocolEvent::Message(message) => match &message.body {
                Body::Hello(hello) => Some(hello.clone()),
                _ => None,
            },
            ProtocolEvent::Reject(_) => None,
        };
        let (access, _) = policy_of(step.home.clone(), owner, room, &self.access_defaults).await?;
        let suffix = self.twins.naming().suffix();
        let allowed = access.federation_allows(sender.server_name())
            && self.twins.naming().looks_like_twin(sender)
            && hello
                .as_ref()
                .is_none_or(|h| h.twin_follows_convention(suffix));
        let negotiation = match self.store.negotiation(twin, id.as_str()).await? {
            Some(row) => serde_json::from_str::<Negotiation>(&row.state).map_err(internal)?,
            None if hello.is_some() => {
                // A new peer's hello: the policy and the caps decide before anything is
                // stored, so a refused or flooding peer leaves nothing behind.
                if let Some(why) = self.refuse_new(twin, sender, allowed).await? {
                    tracing::info!(%room, %sender, why, "meeting request refused before storing");
                    let reject = ProtocolEvent::Reject(Reject::new(
                        Some(id),
                        RejectCode::NotAllowed,
                        why,
                        Some(event_type),
                        Some(event_id.as_str()),
                    ));
                    self.send_protocol(&step, &reject, event_id.as_str())
                        .await?;
                    return Ok(());
                }
                Negotiation::new(
                    id.clone(),
                    Party {
                        owner: owner.to_owned(),
                        twin: twin.to_owned(),
                    },
                    step.policy.config,
                )
            }
            None => {
                if !matches!(event, ProtocolEvent::Reject(_)) {
                    let reject = ProtocolEvent::Reject(Reject::new(
                        Some(id),
                        RejectCode::UnknownNegotiation,
                        "no negotiation with this id here",
                        Some(event_type),
                        Some(event_id.as_str()),
                    ));
                    self.send_protocol(&step, &reject, event_id.as_str())
                        .await?;
                }
                return Ok(());
            }
        };
        if hello.is_some() && self.store.a2a_room(twin, sender).await?.is_none() {
            // Reused when this twin later asks the other one.
            self.store.set_a2a_room(twin, sender, room).await?;
        }
        // Who the peer's owner is: known from the negotiation, or introduced by this hello.
        let peer_owner: Option<OwnedUserId> = negotiation
            .peer()
            .map(|p| p.owner.clone())
            .or_else(|| hello.as_ref().map(|h| h.owner.clone()));
        let auto_accept = peer_owner
            .as_deref()
            .is_some_and(|peer| step.policy.auto_accepts(peer));
        let input = Input::Received(Received {
            sender: sender.to_owned(),
            event,
            event_id: Some(event_id.to_string()),
        });
        let policy = Policy {
            allowed,
            auto_accept,
        };
        self.run_step(&step, negotiation, input, policy, event_id.as_str())
            .await
    }

    /// Why a new peer's hello is refused before anything is stored: the policy does not allow
    /// the peer, or too many negotiations are open already (with this peer, or at all).
    async fn refuse_new(
        &self,
        twin: &UserId,
        peer: &UserId,
        allowed: bool,
    ) -> Result<Option<&'static str>, RoomError> {
        if !allowed {
            return Ok(Some("this twin's policy does not accept requests from you"));
        }
        let open = self.store.open_negotiations(twin).await?;
        let with_peer = open
            .iter()
            .filter(|row| row.peer_twin.as_deref() == Some(peer))
            .count();
        if with_peer >= MAX_OPEN_PER_PEER {
            return Ok(Some("too many open requests from you; finish one first"));
        }
        if open.len() >= MAX_OPEN_PER_TWIN {
            return Ok(Some(
                "this twin has too many open requests; try again later",
            ));
        }
        Ok(None)
    }

    /// The owner's answer to a meeting their twin asked them about: `Ok(what was done)`, or
    /// `Err(why nothing was)` for the owner to read.
    pub async fn answer_meeting(
        &self,
        twin: &UserId,
        owner: &UserId,
        id: Option<&str>,
        accept: bool,
        cause: &str,
    ) -> Result<Result<String, String>, RoomError> {
        let _one_at_a_time = self.locks.lock(twin).await;
        let open = self.store.open_negotiations(twin).await?;
        let waiting: Vec<(NegotiationRow, Negotiation)> = open
            .into_iter()
            .filter(|row| id.is_none_or(|id| row.id == id))
            .filter_map(|row| {
                let negotiation: Negotiation = serde_json::from_str(&row.state).ok()?;
                matches!(negotiation.phase(), Phase::AwaitingOwner { .. })
                    .then_some((row, negotiation))
            })
            .collect();
        let (row, negotiation) = match waiting.len() {
            1 => waiting
                .into_iter()
                .next()
                .ok_or_else(|| internal("vanished"))?,
            0 => return Ok(Err("No meeting request is waiting for your answer.".into())),
            _ => {
                let ids: Vec<String> = waiting.iter().map(|(row, _)| row.id.clone()).collect();
                return Ok(Err(format!(
                    "Several meeting requests are waiting; say which: {}.",
                    ids.join(", ")
                )));
            }
        };
        let Some(room) = row.room_id else {
            return Ok(Err(
                "That negotiation has no room; it cannot be answered.".into()
            ));
        };
        let step = self.step_for(twin, owner, &room).await?;
        let input = match (accept, negotiation.phase()) {
            (true, Phase::AwaitingOwner { candidates }) => match candidates.first() {
                Some(slot) => Input::OwnerApprove { slot: *slot },
                None => Input::OwnerDecline,
            },
            _ => Input::OwnerDecline,
        };
        let policy = OWN_SIDE;
        self.run_step(&step, negotiation, input, policy, cause)
            .await?;
        Ok(Ok(if accept {
            "👍 Accepted; I'm telling the other twin.".into()
        } else {
            "👎 Declined; I'm telling the other twin.".into()
        }))
    }

    /// The owner calls a meeting off (agreed or still negotiated): `Ok(what was done)` or
    /// `Err(why nothing was)`.
    pub async fn cancel_meeting(
        &self,
        twin: &UserId,
        owner: &UserId,
        id: &str,
        cause: &str,
    ) -> Result<Result<String, String>, RoomError> {
        let _one_at_a_time = self.locks.lock(twin).await;
        let Some(row) = self.store.negotiation(twin, id).await? else {
            return Ok(Err(format!("I know no meeting negotiation {id}.")));
        };
        let negotiation: Negotiation = serde_json::from_str(&row.state).map_err(internal)?;
        if negotiation.is_finished() {
            return Ok(Err(format!("The negotiation {id} is already over.")));
        }
        let Some(room) = row.room_id else {
            return Ok(Err("That negotiation has no room.".into()));
        };
        let step = self.step_for(twin, owner, &room).await?;
        let policy = OWN_SIDE;
        let input = Input::OwnerCancel {
            reason: format!("cancelled by {owner}"),
        };
        self.run_step(&step, negotiation, input, policy, cause)
            .await?;
        Ok(Ok(
            "🗑️ Called off; the other twin is told and it is out of your calendar.".into(),
        ))
    }

    /// The owner's meetings in progress, for the model in an owner's turn (so that "yes, that
    /// works" can be passed on with the right id); `None` when there are none or they cannot
    /// be read (the turn goes on without).
    pub async fn meetings_context(
        &self,
        twin: &UserId,
        home: Arc<Home>,
    ) -> Option<(String, Vec<OwnedUserId>)> {
        let rows = match self.store.open_negotiations(twin).await {
            Ok(rows) => rows,
            Err(err) => {
                tracing::warn!(%err, "cannot read negotiations for the turn");
                return None;
            }
        };
        if rows.is_empty() {
            return None;
        }
        let negotiations: Vec<Negotiation> = rows
            .iter()
            .filter_map(|row| serde_json::from_str(&row.state).ok())
            .collect();
        let tz = meeting_policy_of(home)
            .await
            .map_or(chrono_tz::UTC, |policy| policy.hours.time_zone);
        let mut peers: Vec<OwnedUserId> = negotiations
            .iter()
            .filter_map(|n| n.peer().map(|p| p.owner.clone()))
            .collect();
        peers.sort();
        peers.dedup();
        a2a::brief::meetings_brief(&negotiations, Utc::now(), tz).map(|brief| (brief, peers))
    }

    /// Negotiations whose deadline passed, as `(twin, negotiation id, room)`: the pipeline
    /// queues a tick for each into its room. Those whose ticks kept failing are left out.
    pub async fn due(&self) -> Result<Vec<(OwnedUserId, String, OwnedRoomId)>, RoomError> {
        let rows = self
            .store
            .negotiations_due(Utc::now().timestamp_millis(), MAX_TICK_FAILURES)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let room = row.room_id?;
                Some((row.twin_id, row.id, room))
            })
            .collect())
    }

    /// Lets a negotiation whose deadline passed time out. A tick that fails is counted; after
    /// [`MAX_TICK_FAILURES`] in a row the negotiation is no longer ticked (and says so once).
    pub async fn tick(&self, twin: &UserId, id: &str) {
        let Err(err) = self.tick_one(twin, id).await else {
            return;
        };
        let failures = match self.store.add_tick_failure(twin, id).await {
            Ok(failures) => failures,
            Err(store_err) => {
                tracing::warn!(%store_err, "cannot count a failed tick");
                return;
            }
        };
        if failures >= MAX_TICK_FAILURES {
            tracing::error!(%err, negotiation = %id, failures, "negotiation deadline tick keeps failing; no longer ticking it");
        } else {
            tracing::warn!(%err, negotiation = %id, failures, "negotiation tick failed");
        }
    }

    async fn tick_one(&self, twin: &UserId, id: &str) -> Result<(), RoomError> {
        let _one_at_a_time = self.locks.lock(twin).await;
        // Read again under the lock: a step may have moved it on since the due list was read.
        let Some(row) = self.store.negotiation(twin, id).await? else {
            return Ok(());
        };
        let now = Utc::now().timestamp_millis();
        if row.finished || row.deadline_ms.is_none_or(|deadline| deadline > now) {
            return Ok(());
        }
        let owner = self
            .twins
            .naming()
            .owner_of(twin)
            .ok_or_else(|| internal("not a twin"))?;
        let room = row.room_id.clone().ok_or_else(|| internal("no room"))?;
        let negotiation: Negotiation = serde_json::from_str(&row.state).map_err(internal)?;
        let step = self.step_for(twin, &owner, &room).await?;
        let cause = format!("tick-{}", row.deadline_ms.unwrap_or_default());
        let policy = OWN_SIDE;
        self.run_step(&step, negotiation, Input::Tick, policy, &cause)
            .await
    }

    async fn step_for<'a>(
        &self,
        twin: &'a UserId,
        owner: &'a UserId,
        room: &'a RoomId,
    ) -> Result<Step<'a>, RoomError> {
        let home = self.twins.ensure(owner).await?.home;
        let policy = meeting_policy_of(home.clone()).await?;
        Ok(Step {
            twin,
            owner,
            room,
            home,
            policy,
        })
    }

    /// One step: the owner's busy times from the calendar, the state machine, its outputs
    /// carried out in order, then the new state saved (carrying out is idempotent: events and
    /// notices have deterministic transaction ids, calendar writes go by UID).
    async fn run_step(
        &self,
        step: &Step<'_>,
        mut negotiation: Negotiation,
        input: Input,
        policy: Policy,
        cause: &str,
    ) -> Result<(), RoomError> {
        let now = Utc::now();
        let home = step.home.clone();
        let tz = step.policy.hours.time_zone;
        let cache = self.busy.clone();
        let busy = tokio::task::spawn_blocking(move || {
            cache.busy(&home, now, TimeDelta::days(HORIZON_DAYS), tz)
        })
        .await
        .map_err(internal)?
        .map_err(|e| RoomError::Internal(format!("calendar: {e}")))?;
        let ctx = Context {
            now,
            busy: &busy,
            hours: &step.policy.hours,
            policy,
        };
        let outputs = match negotiation.handle(input, &ctx) {
            Ok(outputs) => outputs,
            Err(err) => {
                tracing::warn!(%err, negotiation = %negotiation.id().as_str(), "negotiation input refused");
                return Ok(());
            }
        };
        let title = negotiation
            .request()
            .map(|r| r.title.clone())
            .unwrap_or_default();
        let peer = negotiation.peer().cloned();
        let mut calendar_left_alone = false;
        for output in &outputs {
            let started = std::time::Instant::now();
            match output {
                Output::Send(event) => self.send_protocol(step, event, cause).await?,
                Output::Calendar(write) => {
                    calendar_left_alone |= !self
                        .write_calendar(
                            step,
                            write,
                            &title,
                            peer.as_ref(),
                            negotiation.id().as_str(),
                        )
                        .await?;
                }
                Output::Notify(notice) => {
                    let peer_name = peer
                        .as_ref()
                        .map(|p| p.owner.to_string())
                        .unwrap_or_else(|| "the other twin".into());
                    let message = wording::notice_message(
                        notice,
                        &title,
                        &peer_name,
                        negotiation.id().as_str(),
                        tz,
                    );
                    let mut text = self.word_for_owner(step, &message).await;
                    if calendar_left_alone {
                        text = format!(
                            "{text}\n\n⚠️ I left your calendar as it was: the other twin named an \
                             event this negotiation did not make."
                        );
                    }
                    let key = format!("{}:{}:{notice:?}", negotiation.id().as_str(), cause);
                    self.outbox
                        .tell_owner(step.twin, step.owner, &key, &text)
                        .await?;
                    if matches!(notice, Notice::AskOwner { .. }) {
                        tracing::info!(negotiation = %negotiation.id().as_str(), "asked the owner");
                    }
                }
            }
            tracing::debug!(
                twin = %step.twin,
                negotiation = %negotiation.id().as_str(),
                output = output.kind(),
                ms = started.elapsed().as_millis() as u64,
                "negotiation output carried out"
            );
        }
        let row = NegotiationRow {
            twin_id: step.twin.to_owned(),
            id: negotiation.id().as_str().to_owned(),
            peer_twin: peer.map(|p| p.twin.to_owned()),
            room_id: Some(step.room.to_owned()),
            state: serde_json::to_string(&negotiation).map_err(internal)?,
            deadline_ms: negotiation.deadline().map(|d| d.timestamp_millis()),
            finished: negotiation.is_finished(),
        };
        self.store.save_negotiation(&row).await?;
        Ok(())
    }

    async fn send_protocol(
        &self,
        step: &Step<'_>,
        event: &ProtocolEvent,
        cause: &str,
    ) -> Result<(), RoomError> {
        let key = match event {
            ProtocolEvent::Message(m) => {
                format!(
                    "{}:{}:{}",
                    m.negotiation_id.as_str(),
                    event.event_type(),
                    m.seq
                )
            }
            ProtocolEvent::Reject(_) => format!("reject:{cause}"),
        };
        let content = serde_json::to_value(event).map_err(internal)?;
        let txn = txn_id_for(step.twin.as_str(), &key, TxnPart::ProtocolEvent);
        self.outbox
            .send_raw(step.twin, step.room, &txn, event.event_type(), &content)
            .await?;
        Ok(())
    }

    async fn write_calendar(
        &self,
        step: &Step<'_>,
        write: &CalendarWrite,
        title: &str,
        peer: Option<&Party>,
        negotiation: &str,
    ) -> Result<bool, RoomError> {
        let home = step.home.clone();
        let negotiation = negotiation.to_owned();
        let write = write.clone();
        let title = title.to_owned();
        let mut attendees = vec![step.owner.to_string()];
        if let Some(peer) = peer {
            attendees.push(peer.owner.to_string());
        }
        let description = peer.map(|p| {
            format!(
                "Agreed by {} with {}'s twin {} (matrix-os).",
                step.twin, p.owner, p.twin
            )
        });
        tokio::task::spawn_blocking(move || -> Result<bool, RoomError> {
            let mut calendar =
                Calendar::load(&home).map_err(|e| RoomError::Internal(format!("calendar: {e}")))?;
            // Only events this negotiation wrote may be replaced or removed by it: a peer
            // naming the UID of the owner's own event (or another negotiation's) changes
            // nothing.
            let uid = match &write {
                CalendarWrite::Add { uid, .. } | CalendarWrite::Remove { uid } => uid.as_str(),
            };
            let writer = calendar.negotiation_of(uid);
            let ours = writer.as_ref().is_some_and(|w| w.as_deref() == Some(negotiation.as_str()));
            let may = match &write {
                CalendarWrite::Add { .. } => writer.is_none() || ours,
                CalendarWrite::Remove { .. } => ours,
            };
            if !may {
                tracing::warn!(%negotiation, "a calendar change for an event this negotiation did not write; ignored");
                return Ok(false);
            }
            let message = match &write {
                CalendarWrite::Add {
                    uid,
                    title: t,
                    slot,
                } => {
                    calendar.upsert_event(&NewEvent {
                        uid: uid.as_str().to_owned(),
                        title: if t.is_empty() {
                            title.clone()
                        } else {
                            t.clone()
                        },
                        start: slot.start(),
                        end: slot.end(),
                        description,
                        attendees,
                        negotiation: Some(negotiation.clone()),
                    });
                    format!("calendar: add {title} ({})", uid.as_str())
                }
                CalendarWrite::Remove { uid } => {
                    calendar.remove_event(uid.as_str());
                    format!("calendar: remove {title} ({})", uid.as_str())
                }
            };
            calendar
                .save(&home)
                .map_err(|e| RoomError::Internal(format!("calendar: {e}")))?;
            home.commit(&message)?;
            Ok(true)
        })
        .await
        .map_err(internal)?
    }

    /// The owner's notice in the twin's voice when its policy allows and the model keeps every
    /// fact; otherwise, or when the model fails or takes too long, the plain wording.
    async fn word_for_owner(&self, step: &Step<'_>, message: &OwnerMessage) -> String {
        if !message.rewordable || !step.policy.reword_notices || !self.kernel.is_configured() {
            return message.text.clone();
        }
        // A used-up token budget stops the model, not the meeting: the plain wording goes.
        match self.budgets.check(step.twin, step.home.clone()).await {
            Ok(None) => {}
            Ok(Some(_)) => return message.text.clone(),
            Err(err) => {
                tracing::warn!(%err, "cannot read the token budget; sending the plain wording");
                return message.text.clone();
            }
        }
        let model = model_of(step.home.clone()).await.ok().flatten();
        let asked = self.kernel.reword(step.home.clone(), &message.text, model);
        match tokio::time::timeout(REWORD_TIMEOUT, asked).await {
            Ok(Ok((reworded, usage))) => {
                let key = format!("reword:{}", random_id());
                self.budgets
                    .record(step.twin, Some(step.room), &key, &usage)
                    .await;
                self.checked_wording(message, reworded)
            }
            Ok(Err(err)) => {
                tracing::warn!(%err, "the model could not word a notice; sending the plain one");
                message.text.clone()
            }
            Err(_) => {
                tracing::warn!("the model took too long to word a notice; sending the plain one");
                message.text.clone()
            }
        }
    }

    /// The model's wording when it kept every fact of `message`, else the plain one.
    fn checked_wording(&self, message: &OwnerMessage, reworded: String) -> String {
        match wording::check(message, &reworded) {
            Ok(()) => reworded,
            Err(err) => {
                tracing::info!(%err, "the model's wording changed a fact; sending the plain one");
                message.text.clone()
            }
        }
    }

    /// The encrypted room `twin` shares with `peer_twin`, created (peer invited) when needed.
    async fn a2a_room(&self, twin: &UserId, peer_twin: &UserId) -> Result<OwnedRoomId, RoomError> {
        if let Some(room) = self.store.a2a_room(twin, peer_twin).await? {
            return Ok(room);
        }
        let room = self.outbox.open_dm(twin, peer_twin).await?;
        self.store.set_a2a_room(twin, peer_twin, &room).await?;
        tracing::info!(%twin, %peer_twin, %room, "opened a room with another twin");
        Ok(room)
    }
}

/// A fresh negotiation id: 128 random bits, hex.
fn random_id() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::thread_rng().r#gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
