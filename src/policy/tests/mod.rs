//! Tests of the policy module: pure decisions, plus loading and saving in temp-dir homes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod commands;
mod loops;
mod rate;
mod room;

use ruma::{OwnedRoomId, OwnedUserId};

use crate::home::Home;

const OWNER: &str = "@alice:x.org";

fn uid(id: &str) -> OwnedUserId {
    OwnedUserId::try_from(id).expect("user id")
}

fn rid(id: &str) -> OwnedRoomId {
    OwnedRoomId::try_from(id).expect("room id")
}

fn owner() -> OwnedUserId {
    uid(OWNER)
}

/// A fresh home from the built-in template, inside a temp dir kept alive by the caller.
fn new_home() -> (tempfile::TempDir, Home) {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = Home::open_or_create(&dir.path().join("alice"), None, OWNER).expect("home");
    (dir, home)
}
