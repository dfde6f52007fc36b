//! The files of a twin's home that decide how it behaves, read off the async threads. A broken
//! file never opens access: the policy falls back to owner-only, the rest to their defaults.

use std::sync::Arc;

use ruma::{RoomId, UserId};

use super::{TwinError, TwinSettings};
use crate::{
    a2a::{MeetingPolicy, MeetingsFile},
    home::Home,
    policy::{AccessPolicy, RoomSettings},
};

/// An owner's access policy and a room's settings from the home. A broken file never opens
/// access: the policy falls back to owner-only and the room to its defaults.
pub async fn policy_of(
    home: Arc<Home>,
    owner: &UserId,
    room: &RoomId,
    defaults: &crate::config::AccessConfig,
) -> Result<(AccessPolicy, RoomSettings), TwinError> {
    let owner = owner.to_owned();
    let room = room.to_owned();
    let defaults = defaults.clone();
    tokio::task::spawn_blocking(move || {
        let access = AccessPolicy::load(&home, &owner, &defaults).unwrap_or_else(|err| {
            tracing::warn!(%owner, %err, "access policy unreadable; owner only until fixed");
            AccessPolicy::owner_only(&owner)
        });
        let settings = RoomSettings::load(&home, &room).unwrap_or_else(|err| {
            tracing::warn!(%owner, %room, %err, "room settings unreadable; using defaults");
            RoomSettings::default()
        });
        (access, settings)
    })
    .await
    .map_err(|e| TwinError::Internal(e.to_string()))
}

/// The twin's own model (`system/settings.toml`), or `None` for the configured one; a broken
/// file means the configured one.
pub async fn model_of(home: Arc<Home>) -> Result<Option<String>, TwinError> {
    Ok(settings_of(home).await?.model)
}

/// The twin's settings (`system/settings.toml`); a broken file means the defaults (the
/// configured model, approvals asked for).
pub async fn settings_of(home: Arc<Home>) -> Result<TwinSettings, TwinError> {
    tokio::task::spawn_blocking(move || {
        TwinSettings::load(&home).unwrap_or_else(|err| {
            tracing::warn!(%err, "twin settings unreadable; using the defaults");
            TwinSettings::default()
        })
    })
    .await
    .map_err(|e| TwinError::Internal(e.to_string()))
}

/// The owner's meeting policy (`system/meetings.toml`); a broken file means the defaults.
pub async fn meeting_policy_of(home: Arc<Home>) -> Result<MeetingPolicy, TwinError> {
    tokio::task::spawn_blocking(move || {
        MeetingPolicy::load(&home).unwrap_or_else(|err| {
            tracing::warn!(%err, "meeting policy unreadable; using the defaults");
            #[allow(clippy::expect_used)]
            MeetingPolicy::from_file(&MeetingsFile::default())
                .expect("the default meeting policy is valid")
        })
    })
    .await
    .map_err(|e| TwinError::Internal(e.to_string()))
}

/// What the owner decided about bridged chats (`system/bridges.toml`); a broken file means the
/// defaults (every portal only read: the twin answers nobody there).
pub async fn bridge_settings_of(
    home: Arc<Home>,
) -> Result<crate::bridge::BridgeSettings, TwinError> {
    tokio::task::spawn_blocking(move || {
        crate::bridge::BridgeSettings::load(&home).unwrap_or_else(|err| {
            tracing::warn!(%err, "bridge settings unreadable; no portal is answered");
            crate::bridge::BridgeSettings::default()
        })
    })
    .await
    .map_err(|e| TwinError::Internal(e.to_string()))
}
