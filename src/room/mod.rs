//! Room sessions: every inbox event is decrypted when needed, recorded (members, recent
//! messages, the twins' own events), decided on ([`decide`]) and acted on in its room's queue.
//!
//! Data flows one way: transaction -> inbox -> room queue -> facts -> decision -> actions
//! (kernel turns, commands, pairing, notices) -> events sent as the twin.

pub mod command;
pub mod decide;
mod dispatcher;
pub mod event;
mod facts;
mod limits;
mod negotiate;
mod pairing;
mod render;
mod run_command;
mod send;
mod turn;
mod twin_locks;

use std::{sync::Arc, time::Duration};

use ruma::{OwnedUserId, UserId};
use tokio::sync::{Semaphore, mpsc};

pub use self::render::render_markdown;
use self::{
    decide::{Action, Context, decide},
    dispatcher::Work,
    event::RoomEvent,
    limits::Limits,
};
use crate::{
    config::Config,
    crypto::{Crypto, CryptoError, DecryptError},
    kernel::Kernel,
    matrix::{MatrixClient, MatrixError},
    storage::Store,
    twin::{TwinError, Twins},
};

/// Attempts at an action whose failure may be passing (homeserver down, database busy).
const ACTION_ATTEMPTS: u32 = 3;

/// Messages kept per room for group context.
const ROOM_LOG_KEEP: i64 = 200;

/// Runs `attempt` until it succeeds, fails for good, or [`ACTION_ATTEMPTS`] tries failed
/// in passing (waiting 2 s, then 4 s, ...); `what` names it in logs.
pub(crate) async fn retrying<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, RoomError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RoomError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(err) if err.is_transient() && tries < ACTION_ATTEMPTS => {
                tracing::warn!(%err, attempt = tries, "{what} failed, retrying");
                tokio::time::sleep(Duration::from_secs(2u64.pow(tries))).await;
            }
            done => return done,
        }
    }
}

/// An action failed.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    /// The homeserver refused or was unreachable.
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    /// The twin could not be made ready.
    #[error(transparent)]
    Twin(#[from] TwinError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The home failed.
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    /// Encryption failed: nothing was sent.
    #[error("encryption failed, nothing was sent: {0}")]
    Crypto(#[from] CryptoError),
    /// A blocking task died.
    #[error("internal: {0}")]
    Internal(String),
}

impl RoomError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Matrix(err)
            | Self::Twin(TwinError::Matrix(err))
            | Self::Crypto(CryptoError::Matrix(err)) => err.is_transient(),
            Self::Storage(_) | Self::Twin(TwinError::Storage(_)) => true,
            _ => false,
        }
    }
}

/// Everything room sessions need.
#[derive(Debug)]
pub struct Rooms {
    store: Store,
    matrix: MatrixClient,
    twins: Arc<Twins>,
    kernel: Arc<Kernel>,
    crypto: Arc<Crypto>,
    access_defaults: crate::config::AccessConfig,
    limits: Limits,
    turn_slots: Semaphore,
    /// One negotiation step of a twin at a time.
    negotiating: twin_locks::TwinLocks,
    history_limit: usize,
    context_messages: usize,
    done: mpsc::UnboundedSender<i64>,
    done_rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<i64>>>,
}

impl Rooms {
    /// Room sessions over these parts, configured by `[rooms]`, `[access]` and `[limits]`.
    pub fn new(
        store: Store,
        matrix: MatrixClient,
        twins: Arc<Twins>,
        kernel: Arc<Kernel>,
        crypto: Arc<Crypto>,
        config: &Config,
    ) -> Self {
        let (done, done_rx) = mpsc::unbounded_channel();
        let local = twins.naming().server_name().to_owned();
        Self {
            store,
            matrix,
            twins,
            kernel,
            crypto,
            access_defaults: config.access.clone(),
            limits: Limits::new(&config.limits, &local),
            turn_slots: Semaphore::new(config.rooms.max_concurrent_turns.max(1)),
            negotiating: twin_locks::TwinLocks::default(),
            history_limit: config.rooms.history_messages,
            context_messages: config.rooms.context_messages,
            done,
            done_rx: std::sync::Mutex::new(Some(done_rx)),
        }
    }

    /// Handles one piece of work: an inbox item (then marked done) or an event whose room key
    /// arrived. Passing failures are retried; a lasting failure is logged and the item is
    /// finished so the room does not stall.
    async fn handle(&self, work: Work) {
        match work {
            Work::Inbox(item) => {
                self.handle_event(&item.event, None).await;
                self.finished(item.id);
            }
            Work::Retry(utd) => self.handle_event(&utd.event_json, Some(utd.id)).await,
        }
    }

    /// Decrypts when needed, records, decides and acts. `waiting` is the id of the kept
    /// undecryptable copy when this is a retry.
    async fn handle_event(&self, json: &str, waiting: Option<i64>) {
        let mut event = RoomEvent::parse(json);
        let Some(room) = event.room_id().map(ToOwned::to_owned) else {
            return;
        };
        if matches!(
            event,
            RoomEvent::EncryptionEnabled { .. } | RoomEvent::Encrypted { .. }
        ) && let Err(err) = self.store.set_room_encrypted(room.as_str(), true).await
        {
            tracing::error!(%err, "cannot record that the room is encrypted");
        }
        let joined: Vec<OwnedUserId> = match self.store.room_twins(room.as_str()).await {
            Ok(rows) => rows
                .into_iter()
                .filter(|(_, membership)| membership == "join")
                .filter_map(|(twin, _)| OwnedUserId::try_from(twin).ok())
                .collect(),
            Err(err) => {
                tracing::error!(%err, "cannot read room members; will retry on restart");
                return;
            }
        };
        let arrived_encrypted = matches!(event, RoomEvent::Encrypted { .. });
        if let RoomEvent::Encrypted { event_id, .. } = &event {
            match self.decrypt(&room, event_id, json, waiting, &joined).await {
                Some(plain) => event = RoomEvent::parse(&plain),
                None => return,
            }
        }
        if let Err(err) = self.record(&event, &joined).await {
            tracing::error!(%err, %room, "cannot record the event");
        }
        let facts = match self.facts(&event, &joined).await {
            Ok(facts) => facts,
            Err(err) => {
                tracing::error!(%err, %room, "cannot gather the room's facts");
                return;
            }
        };
        let views = facts.views();
        let may_have_twin = |owner: &UserId| self.twins.may_have_twin(owner);
        let ctx = Context {
            naming: self.twins.naming(),
            may_have_twin: &may_have_twin,
            twins: &views,
            member_count: facts.member_count,
            arrived_encrypted,
        };
        for action in decide(&event, &ctx) {
            self.execute_with_retries(&action).await;
        }
    }

    /// Decrypts with a twin of the room. An event whose key is missing is kept (never
    /// dropped), a key request goes out, and it is retried when the key arrives.
    async fn decrypt(
        &self,
        room: &ruma::RoomId,
        event_id: &ruma::EventId,
        json: &str,
        waiting: Option<i64>,
        joined: &[OwnedUserId],
    ) -> Option<String> {
        // No joined twin: nobody here could have been given the key.
        let twin = joined.first()?;
        match self.crypto.decrypt(twin, room, json).await {
            Ok(plain) => {
                if let Some(id) = waiting
                    && let Err(err) = self.store.remove_undecrypted(id).await
                {
                    tracing::warn!(%err, "cannot drop the kept copy of a decrypted event");
                }
                Some(plain.to_string())
            }
            Err(DecryptError::MissingKey { session_id }) => {
                if waiting.is_none() {
                    tracing::warn!(%room, %event_id, %session_id, "room key missing; keeping the event until it arrives");
                    if let Err(err) = self
                        .store
                        .add_undecrypted(
                            room.as_str(),
                            twin.as_str(),
                            &session_id,
                            event_id.as_str(),
                            json,
                        )
                        .await
                    {
                        tracing::error!(%err, "cannot keep an undecryptable event");
                    }
                    if let Err(err) = self.crypto.request_key(twin, room, json).await {
                        tracing::warn!(%err, "room key request failed");
                    }
                }
                None
            }
            Err(err) => {
                tracing::error!(%room, %event_id, %err, "event cannot be decrypted");
                None
            }
        }
    }

    /// Keeps what later decisions need: members and their names, recent messages, and the
    /// events twins sent (replies to them and their threads address them).
    async fn record(
        &self,
        event: &RoomEvent,
        joined: &[OwnedUserId],
    ) -> Result<(), crate::storage::StorageError> {
        match event {
            RoomEvent::Member {
                room_id,
                target,
                membership,
                display_name,
                ..
            } => {
                self.store
                    .set_room_member(
                        room_id.as_str(),
                        target.as_str(),
                        membership,
                        display_name.as_deref(),
                    )
                    .await
            }
            RoomEvent::Text {
                room_id,
                event_id,
                sender,
                body,
                is_edit: false,
                refs,
                ..
            } if !joined.is_empty() => {
                self.store
                    .log_message(
                        room_id.as_str(),
                        event_id.as_str(),
                        sender.as_str(),
                        body,
                        ROOM_LOG_KEEP,
                    )
                    .await?;
                if self.twins.naming().is_twin(sender) {
                    self.store
                        .add_twin_event(
                            room_id.as_str(),
                            event_id.as_str(),
                            sender.as_str(),
                            refs.thread_root.as_ref().map(|r| r.as_str()),
                        )
                        .await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Queues an inbox item to be marked done by [`Rooms::run_finisher`].
    fn finished(&self, id: i64) {
        // The finisher outlives every room worker; if it is gone we are shutting down and the
        // item is simply handled again after the restart.
        let _ = self.done.send(id);
    }

    async fn execute_with_retries(&self, action: &Action) {
        if let Err(err) = retrying("action", || self.execute(action)).await {
            tracing::error!(%err, ?action, "action failed");
        }
    }

    async fn execute(&self, action: &Action) -> Result<(), RoomError> {
        match action {
            Action::RecordMembership {
                twin,
                room,
                membership,
            } => {
                self.store
                    .set_membership(room.as_str(), twin.as_str(), membership)
                    .await?;
            }
            Action::Join { twin, room } => {
                let owner = self
                    .twins
                    .naming()
                    .owner_of(twin)
                    .ok_or_else(|| RoomError::Internal(format!("{twin} is not a twin")))?;
                self.twins.ensure(&owner).await?;
                self.matrix.join_room(twin, room).await?;
                self.store
                    .set_membership(room.as_str(), twin.as_str(), "join")
                    .await?;
                self.seed_members(twin, room).await;
                tracing::info!(%twin, %room, "joined on an invite");
            }
            Action::Decline { twin, room, reason } => {
                // The twin must exist to answer the invite at all.
                if let Some(owner) = self.twins.naming().owner_of(twin)
                    && self.twins.may_have_twin(&owner)
                {
                    self.twins.ensure(&owner).await?;
                }
                match self.matrix.leave_room(twin, room, Some(reason)).await {
                    Ok(()) => tracing::info!(%twin, %room, "declined an invite"),
                    // An unregistered twin cannot decline; the invite simply stays unanswered.
                    Err(err) if !err.is_transient() => {
                        tracing::warn!(%twin, %room, %err, "could not decline invite")
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            Action::Turn { .. } => self.run_turn(action).await?,
            Action::Command {
                twin,
                owner,
                room,
                event_id,
                sender,
                command,
            } => {
                self.run_command(twin, owner, room, event_id, sender, command)
                    .await?
            }
            Action::Pairing {
                twin,
                owner,
                room,
                event_id,
                sender,
                text,
            } => {
                self.run_pairing(twin, owner, room, event_id, sender, text)
                    .await?
            }
            Action::Protocol {
                twin,
                owner,
                room,
                event_id,
                sender,
                event_type,
                content,
            } => {
                self.on_protocol_event(twin, owner, room, event_id, sender, event_type, content)
                    .await?
            }
            Action::Refuse {
                twin,
                owner,
                room,
                event_id,
                sender,
            } => self.refuse(twin, owner, room, event_id, sender).await?,
        }
        Ok(())
    }

    /// Records who is in a room the twin just joined (later changes come as member events).
    async fn seed_members(&self, twin: &UserId, room: &ruma::RoomId) {
        match self.matrix.joined_members(twin, room).await {
            Ok(members) => {
                for (user, name) in members {
                    if let Err(err) = self
                        .store
                        .set_room_member(room.as_str(), user.as_str(), "join", name.as_deref())
                        .await
                    {
                        tracing::warn!(%err, "cannot record a room member");
                    }
                }
            }
            Err(err) => tracing::warn!(%err, %room, "cannot read the room's members"),
        }
    }
}
