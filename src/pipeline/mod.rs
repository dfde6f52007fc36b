//! The event pipeline, as stages with one job each:
//!
//! ```text
//! appservice/ (intake)   authenticate, read each event's room, store the transaction, ack
//!   │ inbox (storage/)   the only hand-over: durable, read in id order
//!   ▼
//! reader                 parses each event once; encryption data first, to the crypto intake
//!   ├─► crypto intake    per twin: to-device messages, device lists, key counts → Olm machine;
//!   │                    events waiting for the keys that arrived are queued again
//!   ▼
//! room queues            bounded, one ordered queue per room; a full queue parks its room
//!   ▼                    (its events stay in the inbox) without holding up other rooms
//! room session (room/)   decrypt, record, decide (pure), hand each action to its stage
//!   ├─► turn runner (turns/)        a deadline; effects recorded before anything is sent
//!   ├─► commands, pairing (room/)
//!   └─► negotiator (negotiator/)    protocol state machine, calendar
//!   ▼
//! outbox (outbox/)       the only sender: encrypt or send nothing, one retry layer
//! ```
//!
//! Beside the flow: the finisher marks handled inbox items done in batches; the sweeper
//! retries events still waiting for keys and gives up on old ones; the ticker queues deadline
//! ticks of negotiations into their rooms; the reaper closes idle twins' machines and homes; the
//! checkpointer keeps SQLite's write-ahead log short, so that no commit (an ack among them)
//! copies it into the database itself.

mod checkpointer;
mod crypto_intake;
mod finisher;
mod parked;
mod queues;
mod reader;
mod sweeper;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use ruma::{OwnedUserId, RoomId};
use tokio::{
    sync::{Notify, mpsc, watch},
    task::JoinHandle,
};

pub use self::{
    finisher::Finisher,
    queues::{Depths, RoomQueues, Work, Worker},
};
use crate::{
    crypto::Crypto, metrics::Metrics, negotiator::Negotiator, outbox::Outbox, room::RoomSession,
    storage::Store, twin::Twins,
};

/// How often negotiation deadlines are checked.
const TICK: Duration = Duration::from_secs(5);

/// Does the work of the room queues: events and retries go to the room session, ticks to the
/// negotiator; handled inbox items are reported to the finisher.
struct Dispatch {
    session: Arc<RoomSession>,
    negotiator: Arc<Negotiator>,
    finisher: Finisher,
    /// Ticks queued and not handled yet (a tick is queued once).
    ticks: Mutex<HashSet<(OwnedUserId, String)>>,
}

#[async_trait]
impl Worker for Dispatch {
    async fn work(&self, _room: &RoomId, work: Work) {
        match work {
            Work::Event { inbox_id, event } => {
                self.session.handle(event).await;
                self.finisher.finish(inbox_id).await;
            }
            Work::Retry(kept) => self.session.retry_undecrypted(kept).await,
            Work::Tick { twin, negotiation } => {
                self.negotiator.tick(&twin, &negotiation).await;
                self.ticks
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .remove(&(twin, negotiation));
            }
        }
    }
}

/// What the pipeline's stages are built from.
pub struct PipelineParts {
    /// The database.
    pub store: Store,
    /// The room session.
    pub session: Arc<RoomSession>,
    /// The negotiator.
    pub negotiator: Arc<Negotiator>,
    /// Encryption.
    pub crypto: Arc<Crypto>,
    /// Sending.
    pub outbox: Arc<Outbox>,
    /// The twins directory.
    pub twins: Arc<Twins>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// `rooms.queue_capacity`.
    pub queue_capacity: usize,
    /// `encryption.undecryptable_expiry_secs`.
    pub undecryptable_expiry: Duration,
    /// `twins.idle_close_secs`.
    pub idle_close: Duration,
}

/// A running pipeline: its tasks, and its queues (for metrics).
pub struct Pipeline {
    /// The room queues.
    pub queues: Arc<RoomQueues>,
    /// The pipeline's tasks.
    pub tasks: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts every stage: the reader handles what an earlier run left in the inbox first, the
    /// sweeper retries the events still waiting for keys.
    pub fn start(
        parts: PipelineParts,
        inbox_ready: Arc<Notify>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let (finisher, finished) = Finisher::new();
        let (has_space_tx, has_space_rx) = mpsc::unbounded_channel();
        let dispatch = Arc::new(Dispatch {
            session: parts.session.clone(),
            negotiator: parts.negotiator.clone(),
            finisher: finisher.clone(),
            ticks: Mutex::default(),
        });
        let queues = RoomQueues::new(
            parts.queue_capacity,
            dispatch.clone(),
            has_space_tx,
            shutdown.clone(),
        );
        let crypto_intake = crypto_intake::CryptoIntake::new(
            parts.crypto.clone(),
            parts.store.clone(),
            queues.clone(),
            finisher.clone(),
        );
        let reader =
            reader::InboxReader::new(parts.store.clone(), queues.clone(), crypto_intake, finisher);
        let mut tasks = vec![
            tokio::spawn(finisher::run(
                parts.store.clone(),
                finished,
                shutdown.clone(),
            )),
            tokio::spawn(reader.run(inbox_ready, has_space_rx, shutdown.clone())),
        ];
        let sweeper = sweeper::Sweeper {
            store: parts.store.clone(),
            queues: queues.clone(),
            outbox: parts.outbox.clone(),
            twins: parts.twins.clone(),
            metrics: parts.metrics.clone(),
            expiry: parts.undecryptable_expiry,
        };
        tasks.push(tokio::spawn(sweeper.run(shutdown.clone())));
        tasks.push(tokio::spawn(checkpointer::run(
            parts.store.clone(),
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(tick_negotiations(
            parts.negotiator.clone(),
            queues.clone(),
            dispatch,
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(close_idle(
            parts.crypto.clone(),
            parts.twins.clone(),
            parts.metrics.clone(),
            parts.idle_close,
            shutdown.clone(),
        )));
        if let Some(healed) = parts.crypto.healed_twins() {
            tasks.push(tokio::spawn(tell_owners_of_new_devices(
                healed,
                parts.outbox.clone(),
                parts.twins.clone(),
                shutdown,
            )));
        }
        Self { queues, tasks }
    }
}

/// Every few seconds, queues a tick for each negotiation whose deadline passed, into its room.
async fn tick_negotiations(
    negotiator: Arc<Negotiator>,
    queues: Arc<RoomQueues>,
    dispatch: Arc<Dispatch>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => return,
        }
        let due = match negotiator.due().await {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(%err, "cannot read due negotiations");
                continue;
            }
        };
        for (twin, negotiation, room) in due {
            let key = (twin.clone(), negotiation.clone());
            let new = dispatch
                .ticks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(key.clone());
            if new
                && queues
                    .try_push(&room, Work::Tick { twin, negotiation })
                    .is_err()
            {
                // The room is busy: tried again at the next tick.
                dispatch
                    .ticks
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .remove(&key);
            }
        }
    }
}

/// Closes the machines and homes of twins idle for longer than `idle`.
async fn close_idle(
    crypto: Arc<Crypto>,
    twins: Arc<Twins>,
    metrics: Arc<Metrics>,
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = (idle / 4).clamp(Duration::from_millis(250), Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let closed = crypto.close_idle(idle);
        if closed > 0 {
            metrics.twins_closed.inc_by(closed as u64);
            tracing::debug!(closed, "closed idle twins' crypto");
        }
        twins.close_idle_homes(idle);
        metrics.twins_open.set(crypto.open_count() as i64);
    }
}

/// Tells owners (in their DM, or the next one they open) that their twin has a new device.
async fn tell_owners_of_new_devices(
    mut healed: mpsc::UnboundedReceiver<OwnedUserId>,
    outbox: Arc<Outbox>,
    twins: Arc<Twins>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let twin = tokio::select! {
            twin = healed.recv() => match twin {
                Some(twin) => twin,
                None => return,
            },
            _ = shutdown.changed() => return,
        };
        if let Some(owner) = twins.naming().owner_of(&twin) {
            outbox.deliver_owner_notices(&twin, &owner).await;
        }
    }
}
