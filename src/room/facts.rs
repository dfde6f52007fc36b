//! The facts a decision needs, read from the store and the owners' homes.

use ruma::{OwnedUserId, RoomId};

use std::time::Duration;

use ruma::events::room::member::MembershipState;

use super::{
    RoomError, RoomSession,
    decide::{PortalSide, TwinView},
    event::RoomEvent,
};
use crate::{
    bridge::{Portal, PortalMode},
    policy::{AccessPolicy, RoomSettings},
    twin::{bridge_settings_of, policy_of},
};

/// One twin's side of a portal, owned.
pub(super) struct PortalFacts {
    mode: PortalMode,
    owner_chat: bool,
    owner_ghosts: Vec<OwnedUserId>,
    quiet: bool,
}

/// One twin's facts, owned (the decision borrows them as a [`TwinView`]).
pub(super) struct TwinFacts {
    pub(super) twin: OwnedUserId,
    pub(super) owner: OwnedUserId,
    pub(super) joined: bool,
    pub(super) access: AccessPolicy,
    pub(super) settings: RoomSettings,
    pub(super) display_name: Option<String>,
    pub(super) replied_to: bool,
    pub(super) in_thread: bool,
    pub(super) portal: Option<PortalFacts>,
}

/// Everything [`super::decide::decide`] is told about the room of an event.
pub(super) struct Facts {
    pub(super) twins: Vec<TwinFacts>,
    pub(super) member_count: usize,
}

impl Facts {
    pub(super) fn views(&self) -> Vec<TwinView<'_>> {
        self.twins
            .iter()
            .map(|t| TwinView {
                twin: &t.twin,
                owner: &t.owner,
                joined: t.joined,
                access: &t.access,
                settings: &t.settings,
                display_name: t.display_name.as_deref(),
                replied_to: t.replied_to,
                in_thread: t.in_thread,
                portal: t.portal.as_ref().map(|p| PortalSide {
                    mode: p.mode,
                    owner_chat: p.owner_chat,
                    owner_ghosts: &p.owner_ghosts,
                    quiet: p.quiet,
                }),
            })
            .collect()
    }
}

impl RoomSession {
    /// Gathers the facts about `event`'s room: its joined twins (and the target of a twin's
    /// membership event) with their policies, and how many people are in it.
    pub(super) async fn facts(
        &self,
        event: &RoomEvent,
        joined: &[OwnedUserId],
    ) -> Result<Facts, RoomError> {
        let Some(room) = event.room_id() else {
            return Ok(Facts {
                twins: Vec::new(),
                member_count: 0,
            });
        };
        let mut candidates: Vec<(OwnedUserId, bool)> =
            joined.iter().map(|t| (t.clone(), true)).collect();
        if let RoomEvent::Member { target, .. } = event
            && self.parts.twins.naming().is_twin(target)
            && !joined.contains(target)
        {
            candidates.push((target.clone(), false));
        }
        let (reply_to, thread_root) = match event {
            RoomEvent::Text { refs, .. } => (refs.reply_to.clone(), refs.thread_root.clone()),
            _ => (None, None),
        };
        let replied_twin = match &reply_to {
            Some(id) => self.parts.store.twin_of_event(room, id).await?,
            None => None,
        };
        let thread_twins = match &thread_root {
            Some(root) => self.parts.store.twins_in_thread(room, root).await?,
            None => Vec::new(),
        };
        let members = self.known_members(room, joined).await?;
        let portal = if self.parts.bridges.is_empty() {
            None
        } else {
            self.parts.store.portal(room).await?
        };
        let mut twins = Vec::with_capacity(candidates.len());
        for (twin, is_joined) in candidates {
            let Some(owner) = self.parts.twins.naming().owner_of(&twin) else {
                continue;
            };
            if !self.parts.twins.may_have_twin(&owner) {
                continue;
            }
            let home = self.parts.twins.home(&owner).await?;
            let (access, settings) =
                policy_of(home.clone(), &owner, room, &self.parts.access_defaults).await?;
            let portal = match &portal {
                Some(portal) => Some(
                    self.portal_facts(portal, &twin, &owner, room, &members, home)
                        .await?,
                ),
                None => None,
            };
            let display_name = members
                .iter()
                .find(|m| m.user_id == twin.as_str())
                .and_then(|m| m.display_name.clone());
            twins.push(TwinFacts {
                replied_to: replied_twin.as_deref() == Some(&twin),
                in_thread: thread_twins.iter().any(|t| t == twin.as_str()),
                twin,
                owner,
                joined: is_joined,
                access,
                settings,
                display_name,
                portal,
            });
        }
        Ok(Facts {
            twins,
            member_count: members.len(),
        })
    }

    /// How `twin` stands in `portal`: the owner's choice for it, their ghosts, whether it is
    /// their note-to-self chat, whether they answered there lately.
    async fn portal_facts(
        &self,
        portal: &Portal,
        twin: &ruma::UserId,
        owner: &ruma::UserId,
        room: &RoomId,
        members: &[crate::storage::MemberRow],
        home: std::sync::Arc<crate::home::Home>,
    ) -> Result<PortalFacts, RoomError> {
        let bridges = &self.parts.bridges;
        let settings = bridge_settings_of(home).await?;
        let mut owner_ghosts = portal.owner_ghosts(bridges);
        for ghost in settings.me.values().flatten() {
            if !owner_ghosts.contains(ghost) {
                owner_ghosts.push(ghost.clone());
            }
        }
        let naming = self.parts.twins.naming();
        let owner_chat = members
            .iter()
            .filter(|m| {
                matches!(
                    m.membership,
                    MembershipState::Join | MembershipState::Invite
                )
            })
            .all(|m| {
                m.user_id == owner
                    || owner_ghosts.contains(&m.user_id)
                    || bridges.is_bot(&m.user_id)
                    || naming.is_twin(&m.user_id)
            });
        let quiet = self.parts.quiet.is_quiet(
            twin,
            room,
            Duration::from_secs(settings.quiet_minutes.saturating_mul(60)),
        );
        Ok(PortalFacts {
            mode: settings.mode(room),
            owner_chat,
            owner_ghosts,
            quiet,
        })
    }

    /// The room's members; rooms joined before members were recorded are read from the
    /// homeserver once.
    pub(super) async fn known_members(
        &self,
        room: &RoomId,
        joined: &[OwnedUserId],
    ) -> Result<Vec<crate::storage::MemberRow>, RoomError> {
        if let Some(twin) = joined.first()
            && !self.parts.store.room_members_known(room).await?
        {
            self.seed_members(twin, room).await;
        }
        Ok(self.parts.store.room_members(room).await?)
    }
}
