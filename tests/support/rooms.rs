//! Rooms and messages shared by the group and trust suites: an owner's group room with their
//! twin, mentions, and counting model calls.

use std::time::Duration;

use matrix_sdk::{
    Room,
    ruma::{
        UserId,
        events::{Mentions, room::message::RoomMessageEventContent},
    },
};

use crate::{env::TestEnv, human::Human};

/// How long joins may take.
const JOIN_WAIT: Duration = Duration::from_secs(40);

/// A text message mentioning `user` (how Element addresses someone).
pub fn mention(text: &str, user: &UserId) -> RoomMessageEventContent {
    RoomMessageEventContent::text_plain(text)
        .add_mentions(Mentions::with_user_ids([user.to_owned()]))
}

/// How many model calls the fake model received.
pub fn model_calls(env: &TestEnv) -> usize {
    env.llm
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count()
}

/// Alice makes a room with her twin and the given people, who join.
pub async fn group_room(env: &TestEnv, alice: &Human, others: &[&Human], encrypted: bool) -> Room {
    let twin = env.twin_of("alice");
    let mut invite: Vec<&UserId> = vec![&twin];
    invite.extend(others.iter().map(|h| -> &UserId { &h.user_id }));
    let room = alice.create_room(&invite, false, encrypted).await;
    for other in others {
        other.join(room.room_id()).await;
    }
    alice.wait_for_join(&room, &twin, JOIN_WAIT).await;
    for other in others {
        alice.wait_for_join(&room, &other.user_id, JOIN_WAIT).await;
    }
    alice.sync().await;
    room
}
