//! The sweeper: events kept because their room key had not arrived are tried again at start
//! (keys stored before a crash unlock them) and now and then (a retry dropped because its room
//! was busy); those kept longer than `encryption.undecryptable_expiry_secs` are given up, and
//! the owner of the twin that could not read them is told once per sweep.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use ruma::OwnedUserId;
use tokio::sync::watch;

use super::queues::{RoomQueues, Work};
use crate::{
    metrics::Metrics,
    outbox::Outbox,
    storage::{Store, Undecrypted, now_ms},
    twin::Twins,
};

/// Kept events read per page.
const PAGE: i64 = 200;
/// Longest time between two sweeps.
const MAX_PERIOD: Duration = Duration::from_secs(60);

pub(super) struct Sweeper {
    pub(super) store: Store,
    pub(super) queues: Arc<RoomQueues>,
    pub(super) outbox: Arc<Outbox>,
    pub(super) twins: Arc<Twins>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) expiry: Duration,
}

impl Sweeper {
    pub(super) async fn run(self, mut shutdown: watch::Receiver<bool>) {
        self.retry_all().await;
        let period = (self.expiry / 2).clamp(Duration::from_secs(1), MAX_PERIOD);
        let mut cursor = 0;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.changed() => return,
            }
            self.expire().await;
            cursor = self.retry_page(cursor).await;
        }
    }

    /// Queues every kept event for another try (at start).
    async fn retry_all(&self) {
        let mut cursor = 0;
        loop {
            let next = self.retry_page(cursor).await;
            if next == 0 || next == cursor {
                return;
            }
            cursor = next;
        }
    }

    /// Queues one page of kept events after `cursor`; returns where the next page starts (0:
    /// from the beginning again).
    async fn retry_page(&self, cursor: i64) -> i64 {
        let page = match self.store.undecrypted_after(cursor, PAGE).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(%err, "cannot read the events waiting for keys");
                return cursor;
            }
        };
        if page.is_empty() {
            return 0;
        }
        let mut last = cursor;
        for kept in page {
            last = kept.id;
            let room = kept.room_id.clone();
            if self.queues.try_push(&room, Work::Retry(kept)).is_err() {
                // The room is busy; the next sweep tries again.
                continue;
            }
        }
        last
    }

    /// Gives up on events kept past the expiry and tells their twins' owners.
    async fn expire(&self) {
        let cutoff =
            now_ms().saturating_sub(i64::try_from(self.expiry.as_millis()).unwrap_or(i64::MAX));
        let expired = match self.store.undecrypted_before(cutoff, 1000).await {
            Ok(expired) => expired,
            Err(err) => {
                tracing::warn!(%err, "cannot read expired events waiting for keys");
                return;
            }
        };
        let mut by_twin: BTreeMap<OwnedUserId, Vec<Undecrypted>> = BTreeMap::new();
        for kept in expired {
            match self.store.remove_undecrypted(kept.id).await {
                Ok(true) => {}
                // Decrypted at the last moment, or given up by another sweep.
                Ok(false) => continue,
                Err(err) => {
                    tracing::warn!(%err, "cannot give up an undecryptable event");
                    continue;
                }
            }
            self.metrics.undecryptable_expired.inc();
            tracing::warn!(room = %kept.room_id, event = %kept.event_id, "gave up on an event whose room key never arrived");
            by_twin.entry(kept.twin_id.clone()).or_default().push(kept);
        }
        for (twin, events) in by_twin {
            let Some(owner) = self.twins.naming().owner_of(&twin) else {
                continue;
            };
            let text = notice(&events);
            let key = format!(
                "undecryptable:{}",
                events
                    .last()
                    .map(|e| e.event_id.as_str())
                    .unwrap_or_default()
            );
            if let Err(err) = self.outbox.tell_owner(&twin, &owner, &key, &text).await {
                tracing::warn!(%err, "cannot tell the owner about undecryptable messages");
            }
        }
    }
}

/// What the owner reads: how many messages could not be read, from whom and where (never
/// their content: it was never readable).
fn notice(events: &[Undecrypted]) -> String {
    let mut places: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for event in events {
        #[derive(serde::Deserialize)]
        struct Envelope {
            sender: OwnedUserId,
        }
        let sender = serde_json::from_str::<Envelope>(&event.event_json)
            .map(|e| e.sender.to_string())
            .unwrap_or_else(|_| "someone".to_owned());
        let senders = places.entry(event.room_id.as_str()).or_default();
        if !senders.contains(&sender) {
            senders.push(sender);
        }
    }
    let mut text = format!(
        "⚠️ I could not read {} encrypted message(s): their keys never reached me.",
        events.len()
    );
    for (room, senders) in places {
        text.push_str(&format!("\n- in {room}, from {}", senders.join(", ")));
    }
    text.push_str("\n\nIf something was meant for me, please ask for it to be sent again.");
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use ruma::OwnedRoomId;

    use super::*;

    fn kept(id: i64, room: &str, sender: &str) -> Undecrypted {
        Undecrypted {
            id,
            room_id: OwnedRoomId::try_from(room).unwrap(),
            twin_id: ruma::owned_user_id!("@a_ai:x"),
            session_id: "s".into(),
            event_id: ruma::OwnedEventId::try_from(format!("$e{id}")).unwrap(),
            event_json: format!(r#"{{"sender":"{sender}","content":{{"ciphertext":"secret"}}}}"#),
            since_ms: 0,
        }
    }

    #[test]
    fn the_owner_reads_how_many_where_and_from_whom_never_the_content() {
        let text = notice(&[
            kept(1, "!r1:x", "@bob:x"),
            kept(2, "!r1:x", "@bob:x"),
            kept(3, "!r2:x", "@carol:y"),
            kept(4, "!r2:x", "not a user"),
        ]);
        assert!(
            text.contains("could not read 4 encrypted message(s)"),
            "{text}"
        );
        assert!(text.contains("in !r1:x, from @bob:x\n"), "{text}");
        assert!(text.contains("in !r2:x, from @carol:y, someone"), "{text}");
        assert!(!text.contains("secret"));
    }
}
