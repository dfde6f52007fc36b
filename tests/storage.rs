//! Storage against real databases: every body runs on SQLite (temp file) and on PostgreSQL
//! (a throwaway server, see `support/postgres.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/postgres.rs"]
mod postgres;

use std::time::{Duration, Instant};

use ruma::events::room::member::MembershipState;

use matrix_os::storage::{
    Backend, InboxItem, InboxKind, IncomingEvent, SessionAudience, StorageError, Store, TwinRow,
};

/// A database to test against, kept alive for the test.
struct Db {
    url: String,
    backend: Backend,
    pg: Option<postgres::PgServer>,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        // A folder that does not exist yet: connect must create it.
        let url = format!("sqlite://{}/nested/state.db", dir.path().display());
        Db {
            url,
            backend: Backend::Sqlite,
            pg: None,
            _dir: Some(dir),
        }
    }

    fn postgres() -> Db {
        let pg = postgres::PgServer::start();
        Db {
            url: pg.url(),
            backend: Backend::Postgres,
            pg: Some(pg),
            _dir: None,
        }
    }

    async fn connect(&self) -> Store {
        let store = Store::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connect {}: {e}", self.url));
        assert_eq!(store.backend(), self.backend);
        store
    }

    /// Closes `store`, restarts the server (PostgreSQL) and connects again.
    async fn restart(&self, store: Store) -> Store {
        store.close().await;
        if let Some(pg) = &self.pg {
            pg.restart();
        }
        self.connect().await
    }
}

fn events(txn: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"type":"m.room.message","event_id":"${txn}-{i}","room_id":"!room:localhost","sender":"@alice:localhost","origin_server_ts":{},"content":{{"msgtype":"m.text","body":"message {i} of {txn}: héllo 🐱 \"quoted\" \\ back"}}}}"#,
                1_700_000_000_000u64 + i as u64
            )
        })
        .collect()
}

/// Runs one async body against both backends, as `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(&super::Db::sqlite()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(&super::Db::postgres()).await;
            }
        }
    )*};
}

on_both!(
    repeated_txn_stored_once,
    concurrent_same_txn_one_winner,
    concurrent_txns_keep_arrival_order,
    arrival_order_across_transactions,
    finish_and_backlog,
    survives_restart,
    twins_and_memberships,
    sessions_and_messages,
    concurrent_sessions,
    hundred_event_round_trip,
    finish_many_in_one_write,
    parked_events_read_back_by_id_and_by_room,
    crypto_item_first_and_deduplicated,
    crypto_without_events,
    concurrent_crypto_txns_stay_contiguous,
    inbox_rows_from_before_kinds_are_events,
    undecrypted_events_kept,
    concurrent_same_undecrypted_one_row,
    room_encryption_cannot_be_turned_off,
    encryption_state_survives_restart,
    room_members_and_owner_dms,
    room_log_is_bounded_and_ordered,
    twin_events_and_threads,
    pairings_once_per_requester,
    portals_kept_with_their_service_members,
    token_usage_adds_up_and_notices_are_claimed_once,
    session_summaries_only_move_forward,
);

async fn room_members_and_owner_dms(db: &Db) {
    let store = db.connect().await;
    let (dm, group) = (
        ruma::room_id!("!dm:localhost"),
        ruma::room_id!("!group:localhost"),
    );
    assert!(!store.room_members_known(dm).await.unwrap());
    store
        .set_room_member(
            dm,
            ruma::user_id!("@alice_ai:localhost"),
            &MembershipState::Join,
            Some("alice's AI"),
        )
        .await
        .unwrap();
    store
        .set_room_member(
            dm,
            ruma::user_id!("@alice:localhost"),
            &MembershipState::Join,
            Some("Alice"),
        )
        .await
        .unwrap();
    for user in [
        ruma::user_id!("@alice_ai:localhost"),
        ruma::user_id!("@alice:localhost"),
        ruma::user_id!("@bob:localhost"),
    ] {
        store
            .set_room_member(group, user, &MembershipState::Join, None)
            .await
            .unwrap();
    }
    assert!(store.room_members_known(dm).await.unwrap());
    // A later event without a name keeps the known one.
    store
        .set_room_member(
            dm,
            ruma::user_id!("@alice:localhost"),
            &MembershipState::Join,
            None,
        )
        .await
        .unwrap();
    let members = store.room_members(dm).await.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[0].display_name.as_deref(), Some("Alice"));
    assert_eq!(
        store
            .owner_dms(
                ruma::user_id!("@alice_ai:localhost"),
                ruma::user_id!("@alice:localhost")
            )
            .await
            .unwrap(),
        vec![dm.to_owned()]
    );
    // Bob leaves the group: it becomes a DM of the two.
    store
        .set_room_member(
            group,
            ruma::user_id!("@bob:localhost"),
            &MembershipState::Leave,
            None,
        )
        .await
        .unwrap();
    assert_eq!(store.room_members(group).await.unwrap().len(), 2);
    assert_eq!(
        store
            .owner_dms(
                ruma::user_id!("@alice_ai:localhost"),
                ruma::user_id!("@alice:localhost")
            )
            .await
            .unwrap()
            .len(),
        2
    );
    let store = db.restart(store).await;
    assert_eq!(store.room_members(dm).await.unwrap().len(), 2);
    store.close().await;
}

async fn room_log_is_bounded_and_ordered(db: &Db) {
    let store = db.connect().await;
    let room = ruma::room_id!("!r:localhost");
    for i in 0..12 {
        store
            .log_message(
                room,
                &ruma::OwnedEventId::try_from(format!("$e{i}")).unwrap(),
                ruma::user_id!("@bob:localhost"),
                &format!("line {i} 🐱"),
                5,
            )
            .await
            .unwrap();
    }
    // A repeat changes nothing.
    store
        .log_message(
            room,
            ruma::event_id!("$e11"),
            ruma::user_id!("@bob:localhost"),
            "other",
            5,
        )
        .await
        .unwrap();
    let all = store
        .recent_log(room, ruma::event_id!("$none"), 100)
        .await
        .unwrap();
    let bodies: Vec<&str> = all.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(
        bodies,
        [
            "line 7 🐱",
            "line 8 🐱",
            "line 9 🐱",
            "line 10 🐱",
            "line 11 🐱"
        ]
    );
    let before = store
        .recent_log(room, ruma::event_id!("$e10"), 2)
        .await
        .unwrap();
    let ids: Vec<&str> = before.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids, ["$e8", "$e9"]);
    assert!(
        store
            .recent_log(
                ruma::room_id!("!other:localhost"),
                ruma::event_id!("$e1"),
                10
            )
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}

async fn twin_events_and_threads(db: &Db) {
    let store = db.connect().await;
    let room = ruma::room_id!("!r:localhost");
    store
        .add_twin_event(
            room,
            ruma::event_id!("$a"),
            ruma::user_id!("@alice_ai:localhost"),
            None,
        )
        .await
        .unwrap();
    store
        .add_twin_event(
            room,
            ruma::event_id!("$b"),
            ruma::user_id!("@bob_ai:localhost"),
            Some(ruma::event_id!("$root")),
        )
        .await
        .unwrap();
    store
        .add_twin_event(
            room,
            ruma::event_id!("$b"),
            ruma::user_id!("@bob_ai:localhost"),
            Some(ruma::event_id!("$root")),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .twin_of_event(room, ruma::event_id!("$a"))
            .await
            .unwrap()
            .as_deref(),
        Some(ruma::user_id!("@alice_ai:localhost"))
    );
    assert_eq!(
        store
            .twin_of_event(room, ruma::event_id!("$zzz"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .twins_in_thread(room, ruma::event_id!("$root"))
            .await
            .unwrap(),
        vec!["@bob_ai:localhost"]
    );
    // A thread rooted at a twin's own message includes it.
    assert_eq!(
        store
            .twins_in_thread(room, ruma::event_id!("$a"))
            .await
            .unwrap(),
        vec!["@alice_ai:localhost"]
    );
    assert!(
        store
            .twins_in_thread(ruma::room_id!("!x:localhost"), ruma::event_id!("$root"))
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}

async fn pairings_once_per_requester(db: &Db) {
    use matrix_os::storage::PairingRow;
    let store = db.connect().await;
    let row = PairingRow {
        twin_id: ruma::owned_user_id!("@alice_ai:localhost"),
        requester: ruma::owned_user_id!("@bob:remote"),
        room_id: ruma::owned_room_id!("!dm:localhost"),
        event_id: ruma::owned_event_id!("$first"),
        body: "hello ✉".into(),
        status: "pending".into(),
    };
    assert!(store.add_pairing(&row).await.unwrap());
    let again = PairingRow {
        event_id: ruma::owned_event_id!("$second"),
        ..row.clone()
    };
    assert!(!store.add_pairing(&again).await.unwrap());
    assert_eq!(
        store.pairing(&row.twin_id, &row.requester).await.unwrap(),
        Some(row.clone())
    );
    assert!(
        store
            .set_pairing_status(&row.twin_id, &row.requester, "approved")
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_pairing_status(&row.twin_id, ruma::user_id!("@eve:x"), "approved")
            .await
            .unwrap()
    );
    let store = db.restart(store).await;
    let stored = store
        .pairing(&row.twin_id, &row.requester)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.status.as_str(), stored.event_id.as_str()),
        ("approved", "$first")
    );
    store.close().await;
}

/// The encryption data of a transaction, as the appservice would store it.
fn crypto(txn: &str) -> String {
    format!(
        r#"{{"to_device":[{{"type":"m.room.encrypted","sender":"@alice:localhost","content":{{"txn":"{txn}","body":"clé 🔑 \"q\" \\"}}}}],"device_lists":{{"changed":["@alice:localhost"],"left":[]}},"device_one_time_keys_count":{{"@bob_ai:localhost":{{"DEV":{{"signed_curve25519":50}}}}}}}}"#
    )
}

fn kinds(items: &[InboxItem]) -> Vec<InboxKind> {
    items.iter().map(|i| i.kind).collect()
}

async fn crypto_item_first_and_deduplicated(db: &Db) {
    let store = db.connect().await;
    assert!(
        store
            .record_transaction("plain", &events("plain", 2))
            .await
            .unwrap()
    );
    let evs = events("c1", 3);
    assert!(
        store
            .record_transaction_with_crypto("c1", Some(&crypto("c1")), &evs)
            .await
            .unwrap()
    );
    // Retries of the transaction store nothing, with or without (other) encryption data.
    assert!(
        !store
            .record_transaction_with_crypto("c1", Some(&crypto("c1")), &evs)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_transaction_with_crypto("c1", Some(&crypto("other")), &events("x", 4))
            .await
            .unwrap()
    );
    assert!(!store.record_transaction("c1", &evs).await.unwrap());
    // A transaction recorded without encryption data is not recorded again with it either.
    assert!(
        !store
            .record_transaction_with_crypto::<String>("plain", Some(&crypto("plain")), &[])
            .await
            .unwrap()
    );
    assert_eq!(store.inbox_backlog().await.unwrap(), 2 + 1 + 3);

    let items = store.pending_inbox(0, 100).await.unwrap();
    assert_eq!(
        kinds(&items),
        [
            InboxKind::Event,
            InboxKind::Event,
            InboxKind::Crypto,
            InboxKind::Event,
            InboxKind::Event,
            InboxKind::Event
        ]
    );
    for pair in items.windows(2) {
        assert!(pair[0].id < pair[1].id);
    }
    // The crypto item comes before the events of its transaction, which follow in order.
    assert_eq!(items[2].txn_id, "c1");
    assert_eq!(items[2].event, crypto("c1"));
    assert!(items[3..].iter().all(|i| i.txn_id == "c1"));
    assert_eq!(
        items[3..]
            .iter()
            .map(|i| i.event.clone())
            .collect::<Vec<_>>(),
        evs
    );
    assert_eq!(
        items[..2]
            .iter()
            .map(|i| i.event.clone())
            .collect::<Vec<_>>(),
        events("plain", 2)
    );
    // A reader with a cursor past the crypto item gets only the events.
    let after = store.pending_inbox(items[2].id, 100).await.unwrap();
    assert_eq!(kinds(&after), [InboxKind::Event; 3]);

    // Still deduplicated once everything was handled.
    let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
    store.finish_inbox_many(&ids).await.unwrap();
    assert!(
        !store
            .record_transaction_with_crypto("c1", Some(&crypto("c1")), &evs)
            .await
            .unwrap()
    );
    assert_eq!(store.inbox_backlog().await.unwrap(), 0);

    // Concurrent deliveries of one transaction: one winner, one crypto item.
    for round in 0..3 {
        let txn = format!("race-{round}");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (store, txn) = (store.clone(), txn.clone());
                tokio::spawn(async move {
                    store
                        .record_transaction_with_crypto(&txn, Some(&crypto(&txn)), &events(&txn, 5))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            wins += usize::from(task.await.unwrap());
        }
        assert_eq!(wins, 1, "round {round}");
    }
    let items = store.pending_inbox(0, 100).await.unwrap();
    assert_eq!(items.len(), 3 * 6);
    for chunk in items.chunks(6) {
        assert_eq!(chunk[0].kind, InboxKind::Crypto);
        assert_eq!(chunk[0].event, crypto(&chunk[0].txn_id));
        assert!(chunk[1..].iter().all(|i| i.kind == InboxKind::Event));
    }
    store.close().await;
}

async fn crypto_without_events(db: &Db) {
    let store = db.connect().await;
    // Only encryption data (e.g. a to-device room key), no events.
    assert!(
        store
            .record_transaction_with_crypto::<String>("k", Some(&crypto("k")), &[])
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_transaction_with_crypto::<String>("k", Some(&crypto("k")), &[])
            .await
            .unwrap()
    );
    // Neither encryption data nor events: recorded, nothing in the inbox.
    assert!(
        store
            .record_transaction_with_crypto::<String>("empty", None, &[])
            .await
            .unwrap()
    );
    assert!(!store.record_transaction("empty", &[]).await.unwrap());
    let items = store.pending_inbox(0, 100).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (
            items[0].kind,
            items[0].txn_id.as_str(),
            items[0].event.clone()
        ),
        (InboxKind::Crypto, "k", crypto("k"))
    );
    // Later events come after it.
    assert!(
        store
            .record_transaction("later", &events("later", 2))
            .await
            .unwrap()
    );
    let items = store.pending_inbox(0, 100).await.unwrap();
    assert_eq!(
        kinds(&items),
        [InboxKind::Crypto, InboxKind::Event, InboxKind::Event]
    );
    assert!(items[0].id < items[1].id);
    // More events than one insert chunk behind a crypto item.
    let huge = events("huge", 1201);
    assert!(
        store
            .record_transaction_with_crypto("huge", Some(&crypto("huge")), &huge)
            .await
            .unwrap()
    );
    let items = store.pending_inbox(items[2].id, 5000).await.unwrap();
    assert_eq!(items.len(), 1202);
    assert_eq!(items[0].kind, InboxKind::Crypto);
    assert_eq!(
        items[1..]
            .iter()
            .map(|i| i.event.clone())
            .collect::<Vec<_>>(),
        huge
    );
    assert!(items[1..].iter().all(|i| i.kind == InboxKind::Event));
    store.close().await;
}

async fn concurrent_crypto_txns_stay_contiguous(db: &Db) {
    let store = db.connect().await;
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for k in 0..10 {
                    let txn = format!("w{t}-{k}");
                    // Every other transaction carries encryption data.
                    let data = (k % 2 == 0).then(|| crypto(&txn));
                    assert!(
                        store
                            .record_transaction_with_crypto(&txn, data.as_deref(), &events(&txn, 4))
                            .await
                            .unwrap()
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let items = store.pending_inbox(0, 10_000).await.unwrap();
    assert_eq!(items.len(), 8 * (5 * 5 + 5 * 4));
    for pair in items.windows(2) {
        assert!(pair[0].id < pair[1].id);
    }
    // Each transaction is contiguous: its crypto item (if any), then its events in order.
    let mut rest = &items[..];
    while let Some(first) = rest.first() {
        let txn = first.txn_id.clone();
        let len = rest.iter().take_while(|i| i.txn_id == txn).count();
        let (group, tail) = rest.split_at(len);
        let k: usize = txn.rsplit('-').next().unwrap().parse().unwrap();
        let evs = if k.is_multiple_of(2) {
            assert_eq!(group[0].kind, InboxKind::Crypto, "{txn}");
            assert_eq!(group[0].event, crypto(&txn));
            &group[1..]
        } else {
            group
        };
        assert!(evs.iter().all(|i| i.kind == InboxKind::Event), "{txn}");
        assert_eq!(
            evs.iter().map(|i| i.event.clone()).collect::<Vec<_>>(),
            events(&txn, 4)
        );
        rest = tail;
    }
    store.close().await;
}

/// Inbox rows stored by a schema without the `kind` column come back as events after the
/// upgrade.
async fn inbox_rows_from_before_kinds_are_events(db: &Db) {
    sqlx::any::install_default_drivers();
    let (url, folder) = match db.backend {
        Backend::Sqlite => {
            let path = db.url.strip_prefix("sqlite://").unwrap();
            let path = std::path::Path::new(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            (format!("{}?mode=rwc", db.url), "migrations/sqlite")
        }
        Backend::Postgres => (db.url.clone(), "migrations/postgres"),
    };
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let migrator = sqlx::migrate::Migrator::new(folder).await.unwrap();
    migrator.run_to(1, &pool).await.unwrap();
    sqlx::query("INSERT INTO transactions (txn_id, event_count, received_at) VALUES ($1, 1, 0)")
        .bind("old")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO inbox (txn_id, event) VALUES ($1, $2)")
        .bind("old")
        .bind(&events("old", 1)[0])
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let store = db.connect().await;
    let items = store.pending_inbox(0, 10).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].kind, InboxKind::Event);
    assert_eq!(items[0].event, events("old", 1)[0]);
    assert!(!store.record_transaction("old", &[]).await.unwrap());
    assert!(
        store
            .record_transaction_with_crypto("new", Some(&crypto("new")), &events("new", 1))
            .await
            .unwrap()
    );
    let items = store.pending_inbox(items[0].id, 10).await.unwrap();
    assert_eq!(kinds(&items), [InboxKind::Crypto, InboxKind::Event]);
    store.close().await;
}

async fn undecrypted_events_kept(db: &Db) {
    let store = db.connect().await;
    let (room, other_room) = (
        ruma::room_id!("!r:localhost"),
        ruma::room_id!("!q:localhost"),
    );
    let (alice, bob) = (
        ruma::user_id!("@alice_ai:localhost"),
        ruma::user_id!("@bob_ai:localhost"),
    );
    let json = |id: &str| {
        format!(
            r#"{{"type":"m.room.encrypted","event_id":"{id}","content":{{"algorithm":"m.megolm.v1.aes-sha2","session_id":"S","ciphertext":"AwgA…🔒"}}}}"#
        )
    };
    assert_eq!(store.undecrypted_count().await.unwrap(), 0);
    assert!(store.undecrypted_for_room(room).await.unwrap().is_empty());

    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let a1 = store
        .add_undecrypted(room, alice, "s1", ruma::event_id!("$e1"), &json("$e1"))
        .await
        .unwrap();
    let a2 = store
        .add_undecrypted(room, alice, "s1", ruma::event_id!("$e2"), &json("$e2"))
        .await
        .unwrap();
    // The same event for another twin is a row of its own.
    let b1 = store
        .add_undecrypted(room, bob, "s1", ruma::event_id!("$e1"), &json("$e1"))
        .await
        .unwrap();
    let a3 = store
        .add_undecrypted(room, alice, "s2", ruma::event_id!("$e3"), &json("$e3"))
        .await
        .unwrap();
    let q1 = store
        .add_undecrypted(
            other_room,
            alice,
            "s1",
            ruma::event_id!("$e4"),
            &json("$e4"),
        )
        .await
        .unwrap();
    assert!(a1 < a2 && a2 < b1 && b1 < a3 && a3 < q1);
    assert_eq!(store.undecrypted_count().await.unwrap(), 5);

    // Idempotent per (twin, event): same id, nothing changed, nothing added.
    assert_eq!(
        store
            .add_undecrypted(room, alice, "s1", ruma::event_id!("$e1"), &json("$e1"))
            .await
            .unwrap(),
        a1
    );
    assert_eq!(
        store
            .add_undecrypted(room, alice, "other", ruma::event_id!("$e1"), "{}")
            .await
            .unwrap(),
        a1
    );
    assert_eq!(store.undecrypted_count().await.unwrap(), 5);

    let s1 = store.undecrypted_for_session(room, "s1").await.unwrap();
    assert_eq!(
        s1.iter()
            .map(|u| (u.id, u.twin_id.as_ref(), u.event_id.as_str()))
            .collect::<Vec<_>>(),
        [(a1, alice, "$e1"), (a2, alice, "$e2"), (b1, bob, "$e1")]
    );
    let first = &s1[0];
    assert_eq!(
        (
            first.room_id.as_ref(),
            first.session_id.as_str(),
            first.event_json.clone()
        ),
        (room, "s1", json("$e1"))
    );
    assert!(s1.iter().all(|u| u.since_ms >= started - 1000));
    assert!(s1.windows(2).all(|p| p[0].since_ms <= p[1].since_ms));
    // Sessions are per room.
    let q = store
        .undecrypted_for_session(other_room, "s1")
        .await
        .unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!((q[0].id, q[0].event_id.as_str()), (q1, "$e4"));
    assert!(
        store
            .undecrypted_for_session(room, "nope")
            .await
            .unwrap()
            .is_empty()
    );
    let all: Vec<i64> = store
        .undecrypted_for_room(room)
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(all, [a1, a2, b1, a3]);
    assert!(
        store
            .undecrypted_for_room(ruma::room_id!("!none:localhost"))
            .await
            .unwrap()
            .is_empty()
    );

    // Removing: twice or an unknown id is harmless.
    store.remove_undecrypted(a2).await.unwrap();
    store.remove_undecrypted(a2).await.unwrap();
    store.remove_undecrypted(999_999).await.unwrap();
    assert_eq!(store.undecrypted_count().await.unwrap(), 4);
    let s1: Vec<i64> = store
        .undecrypted_for_session(room, "s1")
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(s1, [a1, b1]);
    // A removed event stored again is a new row, after the others.
    let again = store
        .add_undecrypted(room, alice, "s1", ruma::event_id!("$e2"), &json("$e2"))
        .await
        .unwrap();
    assert!(again > q1);
    let s1: Vec<i64> = store
        .undecrypted_for_session(room, "s1")
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(s1, [a1, b1, again]);
    for id in [a1, b1, a3, q1, again] {
        store.remove_undecrypted(id).await.unwrap();
    }
    assert_eq!(store.undecrypted_count().await.unwrap(), 0);
    store.close().await;
}

async fn concurrent_same_undecrypted_one_row(db: &Db) {
    let store = db.connect().await;
    for round in 0..5 {
        let event_id = ruma::OwnedEventId::try_from(format!("$race{round}")).unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (store, event_id) = (store.clone(), event_id.clone());
                tokio::spawn(async move {
                    store
                        .add_undecrypted(
                            ruma::room_id!("!r:localhost"),
                            ruma::user_id!("@a_ai:localhost"),
                            "s",
                            &event_id,
                            "{}",
                        )
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut ids = Vec::new();
        for task in tasks {
            ids.push(task.await.unwrap());
        }
        assert!(ids.iter().all(|id| *id == ids[0]), "round {round}: {ids:?}");
    }
    assert_eq!(store.undecrypted_count().await.unwrap(), 5);
    store.close().await;
}

async fn room_encryption_cannot_be_turned_off(db: &Db) {
    let store = db.connect().await;
    let (room, other) = (
        ruma::room_id!("!r:localhost"),
        ruma::room_id!("!plain:localhost"),
    );
    assert_eq!(store.room_encrypted(room).await.unwrap(), None);
    // Unencrypted is recorded, and can become encrypted.
    store.set_room_encrypted(room, false).await.unwrap();
    assert_eq!(store.room_encrypted(room).await.unwrap(), Some(false));
    store.set_room_encrypted(room, false).await.unwrap();
    assert_eq!(store.room_encrypted(room).await.unwrap(), Some(false));
    store.set_room_encrypted(room, true).await.unwrap();
    assert_eq!(store.room_encrypted(room).await.unwrap(), Some(true));
    // Once encrypted, a `false` (spoofed or stale state) is ignored.
    store.set_room_encrypted(room, false).await.unwrap();
    assert_eq!(store.room_encrypted(room).await.unwrap(), Some(true));
    store.set_room_encrypted(room, true).await.unwrap();
    store.set_room_encrypted(room, false).await.unwrap();
    assert_eq!(store.room_encrypted(room).await.unwrap(), Some(true));
    // Encrypted from the first record on.
    store
        .set_room_encrypted(ruma::room_id!("!e:localhost"), true)
        .await
        .unwrap();
    store
        .set_room_encrypted(ruma::room_id!("!e:localhost"), false)
        .await
        .unwrap();
    assert_eq!(
        store
            .room_encrypted(ruma::room_id!("!e:localhost"))
            .await
            .unwrap(),
        Some(true)
    );
    // Rooms are independent.
    store.set_room_encrypted(other, false).await.unwrap();
    assert_eq!(store.room_encrypted(other).await.unwrap(), Some(false));
    assert_eq!(
        store
            .room_encrypted(ruma::room_id!("!never:localhost"))
            .await
            .unwrap(),
        None
    );
    // Concurrent writers disagreeing: encrypted wins whatever the order.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .set_room_encrypted(ruma::room_id!("!race:localhost"), i == 3)
                    .await
                    .unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        store
            .room_encrypted(ruma::room_id!("!race:localhost"))
            .await
            .unwrap(),
        Some(true)
    );
    store.close().await;
}

async fn encryption_state_survives_restart(db: &Db) {
    let store = db.connect().await;
    assert!(
        store
            .record_transaction_with_crypto("t", Some(&crypto("t")), &events("t", 2))
            .await
            .unwrap()
    );
    let id = store
        .add_undecrypted(
            ruma::room_id!("!r:localhost"),
            ruma::user_id!("@a_ai:localhost"),
            "s",
            ruma::event_id!("$e"),
            "{}",
        )
        .await
        .unwrap();
    store
        .set_room_encrypted(ruma::room_id!("!r:localhost"), true)
        .await
        .unwrap();

    let store = db.restart(store).await;
    let items = store.pending_inbox(0, 10).await.unwrap();
    assert_eq!(
        kinds(&items),
        [InboxKind::Crypto, InboxKind::Event, InboxKind::Event]
    );
    assert_eq!(items[0].event, crypto("t"));
    assert!(
        !store
            .record_transaction_with_crypto("t", Some(&crypto("t")), &events("t", 2))
            .await
            .unwrap()
    );
    let kept = store
        .undecrypted_for_room(ruma::room_id!("!r:localhost"))
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].id, kept[0].event_id.as_str()), (id, "$e"));
    assert_eq!(
        store
            .room_encrypted(ruma::room_id!("!r:localhost"))
            .await
            .unwrap(),
        Some(true)
    );
    store
        .set_room_encrypted(ruma::room_id!("!r:localhost"), false)
        .await
        .unwrap();
    assert_eq!(
        store
            .room_encrypted(ruma::room_id!("!r:localhost"))
            .await
            .unwrap(),
        Some(true)
    );
    store.close().await;
}

async fn finish_many_in_one_write(db: &Db) {
    let store = db.connect().await;
    assert!(
        store
            .record_transaction("m", &events("m", 1200))
            .await
            .unwrap()
    );
    let items = store.pending_inbox(0, 2000).await.unwrap();
    assert_eq!(items.len(), 1200);
    // Every item but the last, over more than one chunk of placeholders; repeats are harmless.
    let mut ids: Vec<i64> = items[..1199].iter().map(|i| i.id).collect();
    ids.push(items[0].id);
    store.finish_inbox_many(&ids).await.unwrap();
    store.finish_inbox_many(&[]).await.unwrap();
    let left = store.pending_inbox(0, 2000).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, items[1199].id);
    store.close().await;
}

/// What the inbox reader reads back for a room it parked: listed items by id, or the room's
/// items scanned from an id (the inbox has no index by room).
async fn parked_events_read_back_by_id_and_by_room(db: &Db) {
    let store = db.connect().await;
    let in_room = |n: usize| -> Vec<IncomingEvent> {
        (0..n)
            .map(|i| {
                let room = if i % 3 == 0 { "!busy:localhost" } else { "!quiet:localhost" };
                IncomingEvent::from_json(format!(
                    r#"{{"type":"m.room.message","event_id":"$p{i}","room_id":"{room}","sender":"@a:localhost","content":{{"body":"{i}"}}}}"#
                ))
            })
            .collect()
    };
    assert!(
        store
            .record_transaction_with_crypto("p", None, &in_room(30))
            .await
            .unwrap()
    );
    let all = store.pending_inbox(0, 100).await.unwrap();
    let busy: Vec<i64> = all
        .iter()
        .filter(|i| i.room_id.as_deref().map(|r| r.as_str()) == Some("!busy:localhost"))
        .map(|i| i.id)
        .collect();
    assert_eq!(busy.len(), 10);
    // One of them handled meanwhile: not read back.
    store.finish_inbox(busy[1]).await.unwrap();
    let listed = [busy[4], busy[0], busy[1], busy[2]];
    let read: Vec<i64> = store
        .inbox_items(&listed)
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(
        read,
        [busy[0], busy[2], busy[4]],
        "oldest first, handled ones left out"
    );
    assert!(store.inbox_items(&[]).await.unwrap().is_empty());
    let busy_room = ruma::room_id!("!busy:localhost");
    let last = all.last().unwrap().id;
    let scanned: Vec<i64> = store
        .pending_inbox_in_room(busy_room, busy[2], last, 3)
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(scanned, busy[2..5]);
    let to_the_end = store
        .pending_inbox_in_room(busy_room, busy[8], last, 10)
        .await
        .unwrap();
    assert_eq!(to_the_end.len(), 2);
    assert!(
        to_the_end
            .iter()
            .all(|i| i.room_id.as_deref() == Some(busy_room))
    );
    store.close().await;
}

async fn repeated_txn_stored_once(db: &Db) {
    let store = db.connect().await;
    let first = events("t1", 3);
    assert!(store.record_transaction("t1", &first).await.unwrap());
    // The homeserver retries with the same id (and the same events): nothing new is stored.
    assert!(!store.record_transaction("t1", &first).await.unwrap());
    assert!(
        !store
            .record_transaction("t1", &events("other", 5))
            .await
            .unwrap()
    );
    assert_eq!(store.inbox_backlog().await.unwrap(), 3);
    // Still deduplicated once the events were handled.
    for item in store.pending_inbox(0, 100).await.unwrap() {
        store.finish_inbox(item.id).await.unwrap();
    }
    assert!(!store.record_transaction("t1", &first).await.unwrap());
    assert_eq!(store.inbox_backlog().await.unwrap(), 0);
    // An empty transaction (only ephemeral data) is recorded too.
    assert!(store.record_transaction("t2", &[]).await.unwrap());
    assert!(!store.record_transaction("t2", &[]).await.unwrap());
    store.close().await;
}

async fn concurrent_same_txn_one_winner(db: &Db) {
    let store = db.connect().await;
    for round in 0..5 {
        let txn = format!("race-{round}");
        let evs = events(&txn, 20);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (store, txn, evs) = (store.clone(), txn.clone(), evs.clone());
                tokio::spawn(async move { store.record_transaction(&txn, &evs).await.unwrap() })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            wins += usize::from(task.await.unwrap());
        }
        assert_eq!(
            wins, 1,
            "round {round}: exactly one call must record the transaction"
        );
    }
    assert_eq!(store.inbox_backlog().await.unwrap(), 5 * 20);
    store.close().await;
}

async fn concurrent_txns_keep_arrival_order(db: &Db) {
    let store = db.connect().await;
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for k in 0..10 {
                    let txn = format!("w{t}-{k}");
                    assert!(
                        store
                            .record_transaction(&txn, &events(&txn, 7))
                            .await
                            .unwrap()
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let items = store.pending_inbox(0, 10_000).await.unwrap();
    assert_eq!(items.len(), 8 * 10 * 7);
    // Ids strictly increase, and each transaction's events are contiguous and in order.
    for pair in items.windows(2) {
        assert!(pair[0].id < pair[1].id);
    }
    for chunk in items.chunks(7) {
        let txn = &chunk[0].txn_id;
        let got: Vec<String> = chunk.iter().map(|i| i.event.clone()).collect();
        assert!(chunk.iter().all(|i| &i.txn_id == txn));
        assert_eq!(got, events(txn, 7));
    }
    // Each writer's transactions are in the order it recorded them.
    for t in 0..8 {
        let order: Vec<&str> = items
            .iter()
            .step_by(7)
            .map(|i| i.txn_id.as_str())
            .filter(|id| id.starts_with(&format!("w{t}-")))
            .collect();
        let expected: Vec<String> = (0..10).map(|k| format!("w{t}-{k}")).collect();
        assert_eq!(order, expected);
    }
    store.close().await;
}

async fn arrival_order_across_transactions(db: &Db) {
    let store = db.connect().await;
    let mut expected = Vec::new();
    for t in 0..5 {
        let txn = format!("order-{t}");
        let evs = events(&txn, 4 + t);
        assert!(store.record_transaction(&txn, &evs).await.unwrap());
        expected.extend(evs.into_iter().map(|e| (txn.clone(), e)));
    }
    // Read in pages of 3, as a consumer with a cursor would.
    let mut got = Vec::new();
    let mut after = 0;
    loop {
        let page = store.pending_inbox(after, 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        for item in page {
            assert!(item.id > after);
            after = item.id;
            got.push((item.txn_id, item.event));
        }
    }
    assert_eq!(got, expected);
    assert!(store.pending_inbox(0, 0).await.unwrap().is_empty());
    assert!(store.pending_inbox(after, 10).await.unwrap().is_empty());
    store.close().await;
}

async fn finish_and_backlog(db: &Db) {
    let store = db.connect().await;
    assert_eq!(store.inbox_backlog().await.unwrap(), 0);
    assert!(
        store
            .record_transaction("a", &events("a", 3))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_transaction("b", &events("b", 2))
            .await
            .unwrap()
    );
    assert_eq!(store.inbox_backlog().await.unwrap(), 5);
    let items = store.pending_inbox(0, 100).await.unwrap();
    store.finish_inbox(items[1].id).await.unwrap();
    store.finish_inbox(items[3].id).await.unwrap();
    store.finish_inbox(items[3].id).await.unwrap(); // twice: harmless
    assert_eq!(store.inbox_backlog().await.unwrap(), 3);
    let left: Vec<i64> = store
        .pending_inbox(0, 100)
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(left, vec![items[0].id, items[2].id, items[4].id]);
    // New arrivals get ids after everything seen so far, even after the newest was finished.
    store.finish_inbox(items[4].id).await.unwrap();
    assert!(
        store
            .record_transaction("c", &events("c", 1))
            .await
            .unwrap()
    );
    let newest = store.pending_inbox(items[2].id, 10).await.unwrap();
    assert_eq!(newest.len(), 1);
    assert!(newest[0].id > items[4].id);
    // Pruning forgets only old transaction ids.
    assert_eq!(
        store
            .prune_transactions(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert!(
        !store
            .record_transaction("a", &events("a", 3))
            .await
            .unwrap()
    );
    store.close().await;
}

async fn survives_restart(db: &Db) {
    let store = db.connect().await;
    assert!(
        store
            .record_transaction("before", &events("before", 10))
            .await
            .unwrap()
    );
    let first = store.pending_inbox(0, 1).await.unwrap();
    store.finish_inbox(first[0].id).await.unwrap();
    store
        .upsert_twin(&TwinRow {
            twin_id: ruma::owned_user_id!("@alice_ai:localhost"),
            owner_id: ruma::owned_user_id!("@alice:localhost"),
            registered: true,
            display_name: Some("Alice (AI)".into()),
        })
        .await
        .unwrap();
    let session = store
        .current_session(
            ruma::room_id!("!r:localhost"),
            ruma::user_id!("@alice_ai:localhost"),
            SessionAudience::Owner,
        )
        .await
        .unwrap();
    store
        .append_messages(session.id, &["one".into(), "two".into()])
        .await
        .unwrap();

    let store = db.restart(store).await;
    assert_eq!(store.inbox_backlog().await.unwrap(), 9);
    let pending = store.pending_inbox(0, 100).await.unwrap();
    assert_eq!(
        pending.iter().map(|i| i.event.clone()).collect::<Vec<_>>(),
        events("before", 10)[1..]
    );
    assert!(
        !store
            .record_transaction("before", &events("before", 10))
            .await
            .unwrap()
    );
    assert!(
        store
            .get_twin(ruma::user_id!("@alice_ai:localhost"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .current_session(
                ruma::room_id!("!r:localhost"),
                ruma::user_id!("@alice_ai:localhost"),
                SessionAudience::Owner,
            )
            .await
            .unwrap(),
        session
    );
    store
        .append_messages(session.id, &["three".into()])
        .await
        .unwrap();
    assert_eq!(
        store.recent_messages(session.id, 10).await.unwrap(),
        vec!["one", "two", "three"]
    );
    // Arrival order continues after the restart.
    assert!(
        store
            .record_transaction("after", &events("after", 2))
            .await
            .unwrap()
    );
    let all = store.pending_inbox(0, 100).await.unwrap();
    assert_eq!(all.len(), 11);
    assert_eq!(all[9].txn_id, "after");
    store.close().await;
}

async fn twins_and_memberships(db: &Db) {
    let store = db.connect().await;
    assert_eq!(
        store
            .get_twin(ruma::user_id!("@nobody_ai:localhost"))
            .await
            .unwrap(),
        None
    );
    let mut twin = TwinRow {
        twin_id: ruma::owned_user_id!("@bob_ai:localhost"),
        owner_id: ruma::owned_user_id!("@bob:localhost"),
        registered: false,
        display_name: None,
    };
    store.upsert_twin(&twin).await.unwrap();
    assert_eq!(
        store.get_twin(&twin.twin_id).await.unwrap(),
        Some(twin.clone())
    );
    twin.registered = true;
    twin.display_name = Some("Bob's twin — 🤖".into());
    store.upsert_twin(&twin).await.unwrap();
    assert_eq!(
        store.get_twin(&twin.twin_id).await.unwrap(),
        Some(twin.clone())
    );
    twin.display_name = None;
    store.upsert_twin(&twin).await.unwrap();
    assert_eq!(
        store.get_twin(&twin.twin_id).await.unwrap(),
        Some(twin.clone())
    );

    assert!(
        store
            .room_twins(ruma::room_id!("!r:localhost"))
            .await
            .unwrap()
            .is_empty()
    );
    store
        .set_membership(
            ruma::room_id!("!r:localhost"),
            ruma::user_id!("@bob_ai:localhost"),
            &MembershipState::Invite,
        )
        .await
        .unwrap();
    store
        .set_membership(
            ruma::room_id!("!r:localhost"),
            ruma::user_id!("@alice_ai:localhost"),
            &MembershipState::Join,
        )
        .await
        .unwrap();
    store
        .set_membership(
            ruma::room_id!("!other:localhost"),
            ruma::user_id!("@bob_ai:localhost"),
            &MembershipState::Join,
        )
        .await
        .unwrap();
    store
        .set_membership(
            ruma::room_id!("!r:localhost"),
            ruma::user_id!("@bob_ai:localhost"),
            &MembershipState::Join,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .room_twins(ruma::room_id!("!r:localhost"))
            .await
            .unwrap(),
        vec![
            (
                ruma::owned_user_id!("@alice_ai:localhost"),
                MembershipState::Join
            ),
            (
                ruma::owned_user_id!("@bob_ai:localhost"),
                MembershipState::Join
            )
        ]
    );
    store
        .set_membership(
            ruma::room_id!("!r:localhost"),
            ruma::user_id!("@alice_ai:localhost"),
            &MembershipState::Leave,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .room_twins(ruma::room_id!("!r:localhost"))
            .await
            .unwrap()[0],
        (
            ruma::owned_user_id!("@alice_ai:localhost"),
            MembershipState::Leave
        )
    );
    assert_eq!(
        store
            .room_twins(ruma::room_id!("!other:localhost"))
            .await
            .unwrap()
            .len(),
        1
    );
    store.close().await;
}

async fn sessions_and_messages(db: &Db) {
    let store = db.connect().await;
    let (room, twin) = (
        ruma::room_id!("!r:localhost"),
        ruma::user_id!("@alice_ai:localhost"),
    );
    let s1 = store
        .current_session(room, twin, SessionAudience::Owner)
        .await
        .unwrap();
    assert_eq!((s1.room_id.as_ref(), s1.twin_id.as_ref()), (room, twin));
    assert_eq!(
        store
            .current_session(room, twin, SessionAudience::Owner)
            .await
            .unwrap(),
        s1
    );
    // Another twin in the same room, and the same twin in another room, have their own.
    let other_twin = store
        .current_session(
            room,
            ruma::user_id!("@bob_ai:localhost"),
            SessionAudience::Owner,
        )
        .await
        .unwrap();
    let other_room = store
        .current_session(ruma::room_id!("!q:localhost"), twin, SessionAudience::Owner)
        .await
        .unwrap();
    assert!(other_twin.id != s1.id && other_room.id != s1.id && other_twin.id != other_room.id);
    // The public audience of the same twin and room has its own session, kept on a reset of
    // the owner's.
    let public = store
        .current_session(room, twin, SessionAudience::Public)
        .await
        .unwrap();
    assert_ne!(public.id, s1.id);
    assert_eq!(
        store
            .current_session(room, twin, SessionAudience::Public)
            .await
            .unwrap(),
        public
    );

    assert!(store.recent_messages(s1.id, 10).await.unwrap().is_empty());
    store.append_messages(s1.id, &[]).await.unwrap();
    let batch1: Vec<String> = (0..5)
        .map(|i| format!(r#"{{"role":"user","n":{i}}}"#))
        .collect();
    let batch2: Vec<String> = (5..8)
        .map(|i| format!(r#"{{"role":"assistant","n":{i}}}"#))
        .collect();
    store.append_messages(s1.id, &batch1).await.unwrap();
    store.append_messages(s1.id, &batch2).await.unwrap();
    store
        .append_messages(other_twin.id, &["elsewhere".into()])
        .await
        .unwrap();
    let all: Vec<String> = batch1.iter().chain(&batch2).cloned().collect();
    assert_eq!(store.recent_messages(s1.id, 100).await.unwrap(), all);
    assert_eq!(store.recent_messages(s1.id, 3).await.unwrap(), all[5..]);
    assert_eq!(store.recent_messages(s1.id, 1).await.unwrap(), all[7..]);
    assert!(store.recent_messages(s1.id, 0).await.unwrap().is_empty());

    // A reset: a new current session, empty; the old one keeps its messages.
    let s2 = store
        .new_session(room, twin, SessionAudience::Owner)
        .await
        .unwrap();
    assert!(s2.id > s1.id);
    assert_eq!(
        store
            .current_session(room, twin, SessionAudience::Owner)
            .await
            .unwrap(),
        s2
    );
    assert_eq!(
        store
            .current_session(room, twin, SessionAudience::Public)
            .await
            .unwrap(),
        public
    );
    assert!(store.recent_messages(s2.id, 10).await.unwrap().is_empty());
    assert_eq!(store.recent_messages(s1.id, 100).await.unwrap(), all);
    store
        .append_messages(s2.id, &["fresh".into()])
        .await
        .unwrap();
    assert_eq!(
        store.recent_messages(s2.id, 10).await.unwrap(),
        vec!["fresh"]
    );
    // new_session on a pair that never had one works too.
    let s3 = store
        .new_session(
            ruma::room_id!("!new:localhost"),
            twin,
            SessionAudience::Owner,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .current_session(
                ruma::room_id!("!new:localhost"),
                twin,
                SessionAudience::Owner
            )
            .await
            .unwrap(),
        s3
    );
    // A big batch, past the insert chunk size.
    let many: Vec<String> = (0..1234).map(|i| format!("m{i}")).collect();
    store.append_messages(s3.id, &many).await.unwrap();
    assert_eq!(store.recent_messages(s3.id, 2000).await.unwrap(), many);
    assert_eq!(store.recent_messages(s3.id, 2).await.unwrap(), many[1232..]);

    match store.append_messages(999_999, &["x".into()]).await {
        Err(StorageError::NotFound(what)) => assert!(what.contains("999999"), "{what}"),
        other => panic!("appending to a missing session: {other:?}"),
    }
    store.close().await;
}

async fn concurrent_sessions(db: &Db) {
    let store = db.connect().await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .current_session(
                        ruma::room_id!("!c:localhost"),
                        ruma::user_id!("@c_ai:localhost"),
                        SessionAudience::Owner,
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().id);
    }
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one current session: {ids:?}"
    );
    // Concurrent resets: each succeeds, and exactly one session ends up current.
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .new_session(
                        ruma::room_id!("!c:localhost"),
                        ruma::user_id!("@c_ai:localhost"),
                        SessionAudience::Owner,
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut made = Vec::new();
    for task in tasks {
        made.push(task.await.unwrap().id);
    }
    let current = store
        .current_session(
            ruma::room_id!("!c:localhost"),
            ruma::user_id!("@c_ai:localhost"),
            SessionAudience::Owner,
        )
        .await
        .unwrap();
    assert!(made.contains(&current.id));
    // Concurrent appends to one session keep every message, each batch contiguous.
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            let id = current.id;
            tokio::spawn(async move {
                let batch: Vec<String> = (0..5).map(|i| format!("{t}:{i}")).collect();
                store.append_messages(id, &batch).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let got = store.recent_messages(current.id, 100).await.unwrap();
    assert_eq!(got.len(), 40);
    for chunk in got.chunks(5) {
        let t = chunk[0].split(':').next().unwrap();
        let expected: Vec<String> = (0..5).map(|i| format!("{t}:{i}")).collect();
        assert_eq!(chunk, expected);
    }
    store.close().await;
}

async fn hundred_event_round_trip(db: &Db) {
    let store = db.connect().await;
    let evs = events("big", 100);
    assert!(store.record_transaction("big", &evs).await.unwrap());
    let items = store.pending_inbox(0, 1000).await.unwrap();
    assert_eq!(items.len(), 100);
    assert!(items.iter().all(|i| i.txn_id == "big"));
    assert_eq!(
        items.iter().map(|i| i.event.clone()).collect::<Vec<_>>(),
        evs
    );
    // Bigger than one insert chunk.
    let huge = events("huge", 1201);
    assert!(store.record_transaction("huge", &huge).await.unwrap());
    let items = store.pending_inbox(items[99].id, 5000).await.unwrap();
    assert_eq!(
        items.iter().map(|i| i.event.clone()).collect::<Vec<_>>(),
        huge
    );
    store.close().await;
}

#[tokio::test]
async fn sqlite_file_and_folder_are_created_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c.db");
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(path.is_file());
    store
        .record_transaction("t", &events("t", 1))
        .await
        .unwrap();
    assert!(
        dir.path().join("a/b/c.db-wal").exists(),
        "WAL mode: a -wal file next to the database"
    );
    store.close().await;
    // Relative form `sqlite:PATH` and absolute `sqlite:///PATH` name the same kind of file.
    let store = Store::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    assert!(!store.record_transaction("t", &[]).await.unwrap());
    store.close().await;
}

#[tokio::test]
async fn connect_errors_are_actionable_and_redacted() {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://bob:hunter2secret@127.0.0.1:{port}/app");
    let started = Instant::now();
    let err = Store::connect(&url).await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "cannot connect to postgres://bob:***@127.0.0.1:{port}/app: "
        )),
        "{err}"
    );
    assert!(!err.contains("hunter2secret"), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a refused connection fails fast"
    );

    let err = Store::connect("mysql://u:pw@h/db")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unsupported database URL") && !err.contains(":pw@"),
        "{err}"
    );

    // A SQLite path under a file cannot get its folder.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let err = Store::connect(&format!("sqlite://{}/file/sub/x.db", dir.path().display()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("cannot create folder"), "{err}");
}

#[tokio::test]
async fn postgres_missing_database_is_named() {
    let pg = postgres::PgServer::start();
    let url = format!("postgres://postgres@127.0.0.1:{}/nope", pg.port());
    let err = Store::connect(&url).await.unwrap_err().to_string();
    assert!(
        err.contains("cannot connect to") && err.contains("nope"),
        "{err}"
    );
    // A second database on the same server is independent.
    let other = Store::connect(&pg.create_database("second")).await.unwrap();
    let main = Store::connect(&pg.url()).await.unwrap();
    assert!(
        other
            .record_transaction("t", &events("t", 2))
            .await
            .unwrap()
    );
    assert!(main.record_transaction("t", &events("t", 2)).await.unwrap());
    // Migrations run again on an up-to-date database without complaint.
    Store::connect(&pg.url()).await.unwrap().close().await;
    main.ping().await.unwrap();
    other.close().await;
    main.close().await;
}

/// Not an assertion: prints the throughput of acks on SQLite (goal: ≥ 10,000 events/s for
/// 100-event transactions, p99 ack < 10 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timing_sqlite_100_by_100() {
    let db = Db::sqlite();
    let store = db.connect().await;
    let batches: Vec<(String, Vec<String>)> = (0..100)
        .map(|t| (format!("bench-{t}"), events(&format!("bench-{t}"), 100)))
        .collect();
    let mut latencies = Vec::with_capacity(batches.len());
    let started = Instant::now();
    for (txn, evs) in &batches {
        let t0 = Instant::now();
        assert!(store.record_transaction(txn, evs).await.unwrap());
        latencies.push(t0.elapsed());
    }
    let total = started.elapsed();
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    let rate = 10_000.0 / total.as_secs_f64();
    println!(
        "sqlite: 100 transactions x 100 events in {total:.2?}: {rate:.0} events/s, ack p50 {p50:.2?}, p99 {p99:.2?}, max {:.2?}",
        latencies[latencies.len() - 1]
    );
    assert_eq!(store.inbox_backlog().await.unwrap(), 10_000);
    store.close().await;
}

async fn portals_kept_with_their_service_members(db: &Db) {
    use matrix_os::bridge::{Portal, PortalKind};
    use ruma::events::room::member::MembershipState;
    let store = db.connect().await;
    let room = ruma::room_id!("!portal:localhost");
    let twin = ruma::user_id!("@alice_ai:localhost");
    assert_eq!(store.portal(room).await.unwrap(), None);
    // Service members of a room that is no portal are not kept.
    store
        .set_portal_service_members(room, &[ruma::owned_user_id!("@x:localhost")])
        .await
        .unwrap();
    assert_eq!(store.portal(room).await.unwrap(), None);
    let mut portal = Portal {
        bot: ruma::owned_user_id!("@telegrambot:localhost"),
        network: "telegram".into(),
        network_name: "Telegram".into(),
        kind: PortalKind::Dm,
        chat_name: Some("Bob \"quoted\" 🐱".into()),
        receiver: Some("1001".into()),
        service_members: Vec::new(),
    };
    store.set_portal(room, &portal).await.unwrap();
    let members = vec![
        ruma::owned_user_id!("@telegrambot:localhost"),
        ruma::owned_user_id!("@telegram_1001:localhost"),
    ];
    store
        .set_portal_service_members(room, &members)
        .await
        .unwrap();
    // A later m.bridge keeps the service members.
    portal.kind = PortalKind::Group;
    portal.receiver = None;
    store.set_portal(room, &portal).await.unwrap();
    portal.service_members = members;
    assert_eq!(store.portal(room).await.unwrap(), Some(portal.clone()));
    // The twin's portals are those it is joined to.
    assert!(store.portals_of(twin).await.unwrap().is_empty());
    store
        .set_membership(room, twin, &MembershipState::Join)
        .await
        .unwrap();
    assert_eq!(
        store.portals_of(twin).await.unwrap(),
        vec![(room.to_owned(), portal)]
    );
    let store = db.restart(store).await;
    assert_eq!(store.portals_of(twin).await.unwrap().len(), 1);
}

async fn token_usage_adds_up_and_notices_are_claimed_once(db: &Db) {
    use matrix_os::budget::UsageTotals;
    let now_ms = || {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
    };
    let store = db.connect().await;
    let alice = ruma::user_id!("@alice_ai:localhost");
    let bob = ruma::user_id!("@bob_ai:localhost");
    let room = ruma::room_id!("!dm:localhost");
    let turn = |input, read| UsageTotals {
        input_tokens: input,
        output_tokens: 10,
        cache_read_tokens: read,
        cache_write_tokens: 5,
        model_calls: 1,
    };
    let start = now_ms();
    store
        .record_token_usage(alice, Some(room), "$one", &turn(100, 0))
        .await
        .unwrap();
    // A second record of the same turn adds to it (a turn's steps, a retried turn).
    store
        .record_token_usage(alice, Some(room), "$one", &turn(200, 150))
        .await
        .unwrap();
    store
        .record_token_usage(alice, None, "reword:x", &turn(3_000_000_000, 0))
        .await
        .unwrap();
    store
        .record_token_usage(bob, Some(room), "$one", &turn(7, 0))
        .await
        .unwrap();
    let store = db.restart(store).await;
    let used = store.token_usage_since(alice, start - 1000).await.unwrap();
    assert_eq!(
        used,
        UsageTotals {
            input_tokens: 3_000_000_300,
            output_tokens: 30,
            cache_read_tokens: 150,
            cache_write_tokens: 15,
            model_calls: 3,
        },
        "sums over i32"
    );
    assert_eq!(
        store
            .token_usage_since(alice, now_ms() + 60_000)
            .await
            .unwrap(),
        UsageTotals::default(),
        "nothing in a later period"
    );
    assert_eq!(
        store.token_usage_since(bob, 0).await.unwrap().input_tokens,
        7
    );

    assert!(
        store
            .claim_budget_notice(alice, "day:2026-12-07")
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_budget_notice(alice, "day:2026-12-07")
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_budget_notice(bob, "day:2026-12-07")
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_budget_notice(alice, "day:2026-12-08")
            .await
            .unwrap()
    );
    let store = db.restart(store).await;
    assert!(
        !store
            .claim_budget_notice(alice, "day:2026-12-07")
            .await
            .unwrap(),
        "once across restarts"
    );
    store.clear_budget_notices(alice).await.unwrap();
    assert!(
        store
            .claim_budget_notice(alice, "day:2026-12-07")
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_budget_notice(bob, "day:2026-12-07")
            .await
            .unwrap()
    );
}

async fn session_summaries_only_move_forward(db: &Db) {
    let store = db.connect().await;
    let (room, twin) = (
        ruma::room_id!("!r:localhost"),
        ruma::user_id!("@alice_ai:localhost"),
    );
    let session = store
        .current_session(room, twin, SessionAudience::Owner)
        .await
        .unwrap();
    let messages: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    store.append_messages(session.id, &messages).await.unwrap();
    assert_eq!(store.session_summary(session.id).await.unwrap(), None);
    let all = store
        .history_window_after(session.id, 60, None, None)
        .await
        .unwrap();
    assert_eq!(all.len(), 10);
    let upto = all[3].0;
    assert!(
        store
            .set_session_summary(session.id, upto, "first four")
            .await
            .unwrap()
    );
    // A summary covering less (a turn that compacted at the same time) does not replace it.
    assert!(
        !store
            .set_session_summary(session.id, all[1].0, "older")
            .await
            .unwrap()
    );
    let store = db.restart(store).await;
    assert_eq!(
        store.session_summary(session.id).await.unwrap(),
        Some((upto, "first four".to_owned()))
    );
    let rest = store
        .history_window_after(session.id, 60, None, Some(upto))
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>(),
        ["m4", "m5", "m6", "m7", "m8", "m9"]
    );
    // The window still moves in steps over what is left.
    let window = store
        .history_window_after(session.id, 4, None, Some(upto))
        .await
        .unwrap();
    assert_eq!(window.first().map(|(_, m)| m.as_str()), Some("m6"));
    assert!(
        store
            .set_session_summary(session.id, all[7].0, "first eight")
            .await
            .unwrap()
    );
    assert_eq!(
        store.session_summary(session.id).await.unwrap().unwrap().1,
        "first eight"
    );
    // A new session (`!ai reset`) has none.
    let fresh = store
        .new_session(room, twin, SessionAudience::Owner)
        .await
        .unwrap();
    assert_eq!(store.session_summary(fresh.id).await.unwrap(), None);
}
