//! The inbox reader: the only consumer of the inbox. It reads items in id order, parses each
//! event once, hands encryption data to the crypto intake (before the events of its
//! transaction, which may need its keys) and events to their room's queue.
//!
//! Back pressure: when a room's queue is full the room is *parked* at that item. Its later
//! events stay in the inbox (on disk; only their ids are listed, see [`ParkedRooms`]) while
//! the reader goes on with other rooms; when the queue has space again the reader reads that
//! room's events from the inbox again, from where it parked, in order.

use std::{sync::Arc, time::Duration};

use ruma::{OwnedRoomId, RoomId};
use tokio::sync::{Notify, mpsc, watch};

use super::{
    crypto_intake::CryptoIntake,
    finisher::Finisher,
    parked::{LISTED_MAX, ParkedRooms, ReadBack},
    queues::{Full, RoomQueues, Work},
};
use crate::{
    room::event::RoomEvent,
    storage::{InboxItem, InboxKind, Store},
};

/// Items read from the inbox at once.
const BATCH: i64 = 256;

/// Reads the inbox into the room queues.
pub(super) struct InboxReader {
    pub(super) store: Store,
    pub(super) queues: Arc<RoomQueues>,
    pub(super) crypto: Arc<CryptoIntake>,
    pub(super) finisher: Finisher,
    /// Highest inbox id read by the main scan.
    cursor: i64,
    /// Rooms whose queue was full, with where their events left in the inbox are.
    parked: ParkedRooms,
}

impl InboxReader {
    pub(super) fn new(
        store: Store,
        queues: Arc<RoomQueues>,
        crypto: Arc<CryptoIntake>,
        finisher: Finisher,
    ) -> Self {
        Self {
            store,
            queues,
            crypto,
            finisher,
            cursor: 0,
            parked: ParkedRooms::new(LISTED_MAX),
        }
    }

    /// Reads the inbox (everything left from before a restart first) until shutdown.
    pub(super) async fn run(
        mut self,
        ready: Arc<Notify>,
        mut has_space: mpsc::UnboundedReceiver<OwnedRoomId>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            while let Ok(room) = has_space.try_recv() {
                self.refill(&room).await;
            }
            let items = match self.store.pending_inbox(self.cursor, BATCH).await {
                Ok(items) => items,
                Err(err) => {
                    tracing::error!(%err, "cannot read the inbox; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => return,
                    }
                    continue;
                }
            };
            if items.is_empty() {
                tokio::select! {
                    _ = ready.notified() => {}
                    Some(room) = has_space.recv() => self.refill(&room).await,
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            for item in items {
                self.cursor = self.cursor.max(item.id);
                self.route(item).await;
            }
        }
    }

    async fn route(&mut self, item: InboxItem) {
        if item.kind == InboxKind::Crypto {
            // Fed before the events of its transaction are queued: they may need its keys.
            self.crypto.feed(item).await;
            return;
        }
        let id = item.id;
        // A parked room's events are skipped without being parsed: a long backlog is scanned
        // cheaply.
        if let Some(room) = &item.room_id
            && self.parked.leave(room, id)
        {
            return;
        }
        let event = RoomEvent::parse(&item.event);
        let Some(room) = event.room_id().map(ToOwned::to_owned) else {
            // Nothing a room session acts on: done at once.
            self.finisher.finish(id).await;
            return;
        };
        if self.parked.leave(&room, id) {
            // Read again from the inbox when the room has space.
            return;
        }
        if let Err(Full(_)) = self.queues.try_push(
            &room,
            Work::Event {
                inbox_id: id,
                event,
            },
        ) {
            tracing::debug!(%room, inbox_id = id, "room queue full; leaving its events in the inbox");
            self.parked.park(&room, id);
            self.queues.park(&room);
        }
    }

    /// A parked room has space: queue its events that were left in the inbox, in order, up to
    /// what the main scan has reached (later ones come with the scan).
    async fn refill(&mut self, room: &RoomId) {
        let limit = self.queues.capacity().max(1);
        let Some(read_back) = self.parked.take(room, limit) else {
            return;
        };
        let (items, from) = match &read_back {
            ReadBack::Ids(ids) => (self.store.inbox_items(ids).await, None),
            ReadBack::From(from) => {
                let limit = i64::try_from(limit).unwrap_or(BATCH);
                let items = self
                    .store
                    .pending_inbox_in_room(room, *from, self.cursor, limit)
                    .await;
                (items, Some(*from))
            }
        };
        let items = match items {
            Ok(items) => items,
            Err(err) => {
                tracing::error!(%err, %room, "cannot read a parked room's events; trying later");
                if let ReadBack::Ids(ids) = &read_back {
                    self.parked.put_back(room, ids);
                }
                self.queues.park(room);
                return;
            }
        };
        let read = items.len();
        let mut next = from.unwrap_or(0);
        for item in items {
            let id = item.id;
            let event = RoomEvent::parse(&item.event);
            if let Err(Full(_)) = self.queues.try_push(
                room,
                Work::Event {
                    inbox_id: id,
                    event,
                },
            ) {
                match &read_back {
                    ReadBack::Ids(ids) => {
                        let rest: Vec<i64> = ids.iter().copied().filter(|&x| x >= id).collect();
                        self.parked.put_back(room, &rest);
                    }
                    ReadBack::From(_) => self.parked.scanned_to(room, id),
                }
                self.queues.park(room);
                return;
            }
            next = id + 1;
        }
        match read_back {
            ReadBack::Ids(_) if self.parked.contains(room) => self.queues.park(room),
            ReadBack::Ids(_) => {
                tracing::debug!(%room, "room queue caught up; reading its events with the others again");
            }
            ReadBack::From(_) if read < limit => {
                tracing::debug!(%room, "room queue caught up; reading its events with the others again");
                self.parked.caught_up(room);
            }
            ReadBack::From(_) => {
                self.parked.scanned_to(room, next);
                self.queues.park(room);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::{
        crypto::Crypto, matrix::MatrixClient, metrics::Metrics, pipeline::queues::tests::Gate,
        secret::Secret, storage::IncomingEvent,
    };

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !done() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
    }

    /// A room flooding past its queue, read back from the inbox with at most `listed_max` ids
    /// listed: every event handled once, in order, and the other room never waits for it.
    async fn flood(listed_max: usize) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let events: Vec<IncomingEvent> = (0..60)
            .map(|i| {
                let room = if i % 4 == 0 { "!quick:x" } else { "!slow:x" };
                IncomingEvent::from_json(format!(
                    r#"{{"type":"m.room.message","room_id":"{room}","sender":"@a:x","event_id":"$e{i}","origin_server_ts":1,"content":{{"msgtype":"m.text","body":"{i}"}}}}"#
                ))
            })
            .collect();
        assert!(
            store
                .record_transaction_with_crypto("t", None, &events)
                .await
                .unwrap()
        );
        let ids = |room: &str| -> Vec<i64> {
            (0..60)
                .filter(|i| (i % 4 == 0) == (room == "!quick:x"))
                .map(|i| i + 1)
                .collect()
        };

        let gate = Gate::new(0);
        let (space_tx, space_rx) = mpsc::unbounded_channel();
        let (stop, shutdown) = watch::channel(false);
        let queues = RoomQueues::new(3, gate.clone(), space_tx, shutdown.clone());
        let matrix = MatrixClient::new(
            "http://127.0.0.1:9",
            Secret::new("t"),
            Duration::from_secs(1),
        )
        .unwrap();
        let metrics = Arc::new(Metrics::new().unwrap());
        let crypto = Arc::new(Crypto::new(
            matrix,
            dir.path(),
            Secret::new("p"),
            store.clone(),
            metrics,
        ));
        let (finisher, _finished) = Finisher::new();
        let intake = CryptoIntake::new(crypto, store.clone(), queues.clone(), finisher.clone());
        let mut reader = InboxReader::new(store.clone(), queues, intake, finisher);
        reader.parked = ParkedRooms::new(listed_max);
        let reader = tokio::spawn(reader.run(Arc::new(Notify::new()), space_rx, shutdown));

        until("the quick room", || gate.of("!quick:x").len() == 15).await;
        assert_eq!(gate.of("!quick:x"), ids("!quick:x"));
        assert!(gate.of("!slow:x").is_empty());
        gate.open.add_permits(1000);
        until("the slow room", || gate.of("!slow:x").len() >= 45).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(gate.of("!slow:x"), ids("!slow:x"), "each once, in order");
        let _ = stop.send(true);
        reader.await.unwrap();
        store.close().await;
    }

    #[tokio::test]
    async fn a_flooded_room_is_read_back_by_listed_ids() {
        flood(LISTED_MAX).await;
    }

    #[tokio::test]
    async fn past_the_listing_bound_a_flooded_room_is_read_back_by_scanning() {
        flood(4).await;
    }
}
