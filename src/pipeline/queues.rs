//! Room queues: one bounded, ordered queue per room, each drained by its own worker. Work in
//! one room runs one item at a time in arrival order; rooms run concurrently.
//!
//! A queue that is full refuses more (the reader then leaves that room's events in the inbox,
//! on disk) and is marked *parked*; once its worker has drained it to half, it tells the reader,
//! which reads that room's events from the inbox again. Memory stays bounded by
//! `rooms.queue_capacity` per active room, and a flooded room never holds up the others.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use ruma::{OwnedRoomId, OwnedUserId, RoomId};
use tokio::sync::{mpsc, watch};

use crate::{room::event::RoomEvent, storage::Undecrypted};

/// How long an idle room keeps its worker task.
const IDLE_ROOM: Duration = Duration::from_secs(30);

/// Work for a room's queue.
#[derive(Debug)]
pub enum Work {
    /// An event from the inbox (parsed once, by the reader), marked done once handled.
    Event {
        /// Its inbox id.
        inbox_id: i64,
        /// The event.
        event: RoomEvent,
    },
    /// An event kept undecryptable, to try again (its room key arrived, or a sweep).
    Retry(Undecrypted),
    /// A negotiation of this room whose deadline passed.
    Tick {
        /// The twin whose negotiation it is.
        twin: OwnedUserId,
        /// The negotiation.
        negotiation: String,
    },
}

/// Does the work of room queues.
#[async_trait]
pub trait Worker: Send + Sync + 'static {
    /// Handles one item of `room`'s queue.
    async fn work(&self, room: &RoomId, work: Work);
}

/// A queue refused work: it is full.
#[derive(Debug)]
pub struct Full(pub Box<Work>);

struct Queue {
    tx: mpsc::Sender<Work>,
    parked: Arc<AtomicBool>,
}

impl Queue {
    fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// How full the queues are, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depths {
    /// Rooms with a worker.
    pub active: usize,
    /// Items waiting in all queues.
    pub items: usize,
    /// Items waiting in the fullest queue.
    pub max: usize,
    /// The bound of each queue.
    pub capacity: usize,
}

/// Every room's queue.
pub struct RoomQueues {
    capacity: usize,
    queues: Mutex<HashMap<OwnedRoomId, Queue>>,
    worker: Arc<dyn Worker>,
    /// Rooms whose parked queue has space again, for the reader.
    has_space: mpsc::UnboundedSender<OwnedRoomId>,
    shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for RoomQueues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomQueues")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl RoomQueues {
    /// Queues of `capacity` items each, drained by `worker`; `has_space` hears of parked rooms
    /// that can take work again.
    pub fn new(
        capacity: usize,
        worker: Arc<dyn Worker>,
        has_space: mpsc::UnboundedSender<OwnedRoomId>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        Arc::new(Self {
            capacity: capacity.max(1),
            queues: Mutex::new(HashMap::new()),
            worker,
            has_space,
            shutdown,
        })
    }

    /// The bound of each queue.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Puts work on `room`'s queue, starting its worker when it has none; [`Full`] when the
    /// queue has no space (the work is handed back).
    pub fn try_push(self: &Arc<Self>, room: &RoomId, work: Work) -> Result<(), Full> {
        let mut queues = self
            .queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let work = match queues.get(room) {
            Some(queue) => match queue.tx.try_send(work) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(work)) => return Err(Full(Box::new(work))),
                // The worker ended between lookup and send: start a new one.
                Err(mpsc::error::TrySendError::Closed(work)) => work,
            },
            None => work,
        };
        let (tx, rx) = mpsc::channel(self.capacity);
        let parked = Arc::new(AtomicBool::new(false));
        // The receiver is right here and the channel empty: this cannot fail.
        let _ = tx.try_send(work);
        queues.insert(
            room.to_owned(),
            Queue {
                tx,
                parked: parked.clone(),
            },
        );
        drop(queues);
        tokio::spawn(self.clone().drain(room.to_owned(), rx, parked));
        Ok(())
    }

    /// Marks `room` parked: the reader holds its events back until its queue has space. When it
    /// has space already (or no queue), the reader hears so at once.
    pub fn park(&self, room: &RoomId) {
        let queues = self
            .queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let has_space = match queues.get(room) {
            Some(queue) => {
                queue.parked.store(true, Ordering::SeqCst);
                queue.depth() <= self.capacity / 2 && queue.parked.swap(false, Ordering::SeqCst)
            }
            None => true,
        };
        drop(queues);
        if has_space {
            let _ = self.has_space.send(room.to_owned());
        }
    }

    /// How full the queues are.
    pub fn depths(&self) -> Depths {
        let queues = self
            .queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut depths = Depths {
            active: queues.len(),
            capacity: self.capacity,
            ..Depths::default()
        };
        for queue in queues.values() {
            let depth = queue.depth();
            depths.items += depth;
            depths.max = depths.max.max(depth);
        }
        depths
    }

    async fn drain(
        self: Arc<Self>,
        room: OwnedRoomId,
        mut rx: mpsc::Receiver<Work>,
        parked: Arc<AtomicBool>,
    ) {
        let mut shutdown = self.shutdown.clone();
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout(IDLE_ROOM, rx.recv()) => next,
                _ = shutdown.changed() => return,
            };
            match next {
                Ok(Some(work)) => {
                    tokio::select! {
                        _ = self.worker.work(&room, work) => {}
                        // Unfinished inbox items stay in the inbox for the next start.
                        _ = shutdown.changed() => return,
                    }
                    if rx.len() <= self.capacity / 2 && parked.swap(false, Ordering::SeqCst) {
                        let _ = self.has_space.send(room.clone());
                    }
                }
                Ok(None) => return,
                Err(_idle) => {
                    let mut queues = self
                        .queues
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    if rx.is_empty() {
                        queues.remove(&room);
                        drop(queues);
                        if parked.load(Ordering::SeqCst) {
                            let _ = self.has_space.send(room.clone());
                        }
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(super) mod tests {
    use std::sync::atomic::AtomicUsize;

    use ruma::room_id;
    use tokio::sync::Semaphore;

    use super::*;

    /// Handles `!slow` rooms' work only when let through; records what it handled per room.
    pub(in crate::pipeline) struct Gate {
        pub(in crate::pipeline) open: Semaphore,
        handled: Mutex<Vec<(OwnedRoomId, i64)>>,
        running: AtomicUsize,
    }

    impl Gate {
        /// A gate with `permits` let through at first.
        pub(in crate::pipeline) fn new(permits: usize) -> Arc<Self> {
            Arc::new(Self {
                open: Semaphore::new(permits),
                handled: Mutex::default(),
                running: AtomicUsize::new(0),
            })
        }

        /// The inbox ids handled in `room`, in the order handled.
        pub(in crate::pipeline) fn of(&self, room: &str) -> Vec<i64> {
            let handled = self.handled.lock().unwrap();
            handled
                .iter()
                .filter(|(r, _)| r.as_str() == room)
                .map(|(_, id)| *id)
                .collect()
        }
    }

    #[async_trait]
    impl Worker for Gate {
        async fn work(&self, room: &RoomId, work: Work) {
            self.running.fetch_add(1, Ordering::SeqCst);
            if room.as_str().starts_with("!slow") {
                self.open.acquire().await.unwrap().forget();
            }
            if let Work::Event { inbox_id, .. } = work {
                self.handled
                    .lock()
                    .unwrap()
                    .push((room.to_owned(), inbox_id));
            }
        }
    }

    fn event(id: i64) -> Work {
        Work::Event {
            inbox_id: id,
            event: RoomEvent::Other,
        }
    }

    #[tokio::test]
    async fn a_full_room_refuses_parks_and_says_when_it_has_space_while_others_go_on() {
        let gate = Gate::new(0);
        let (space_tx, mut space_rx) = mpsc::unbounded_channel();
        let (_stop, shutdown) = watch::channel(false);
        let queues = RoomQueues::new(4, gate.clone(), space_tx, shutdown);
        let slow = room_id!("!slow:x");
        queues.try_push(slow, event(0)).unwrap();
        tokio::time::timeout(Duration::from_secs(2), async {
            while gate.running.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        let mut refused = None;
        for id in 1..10 {
            if let Err(Full(work)) = queues.try_push(slow, event(id)) {
                refused = Some(*work);
                break;
            }
        }
        let Some(Work::Event { inbox_id, .. }) = refused else {
            panic!("the slow room's queue never filled");
        };
        // One item is being handled, four wait: the sixth is refused.
        assert_eq!(inbox_id, 5);
        assert_eq!(queues.depths().max, 4);
        queues.park(slow);
        assert!(space_rx.try_recv().is_err(), "full: no space yet");

        // Another room is not held up.
        queues.try_push(room_id!("!fast:x"), event(100)).unwrap();
        tokio::time::timeout(Duration::from_secs(2), async {
            while !gate
                .handled
                .lock()
                .unwrap()
                .iter()
                .any(|(_, id)| *id == 100)
            {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();

        // Draining to half tells the reader once.
        gate.open.add_permits(3);
        let room = tokio::time::timeout(Duration::from_secs(2), space_rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(room, slow);
        gate.open.add_permits(10);
        tokio::time::timeout(Duration::from_secs(2), async {
            while gate.handled.lock().unwrap().len() < 6 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        let order: Vec<i64> = gate
            .handled
            .lock()
            .unwrap()
            .iter()
            .filter(|(room, _)| room == slow)
            .map(|(_, id)| *id)
            .collect();
        assert_eq!(order, [0, 1, 2, 3, 4], "in order, each once");
        assert!(space_rx.try_recv().is_err(), "told once");
    }

    #[tokio::test]
    async fn parking_a_room_with_space_tells_the_reader_at_once() {
        let gate = Gate::new(100);
        let (space_tx, mut space_rx) = mpsc::unbounded_channel();
        let (_stop, shutdown) = watch::channel(false);
        let queues = RoomQueues::new(4, gate, space_tx, shutdown);
        queues.park(room_id!("!idle:x"));
        assert_eq!(space_rx.try_recv().unwrap(), room_id!("!idle:x"));
    }
}
