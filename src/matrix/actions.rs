//! The calls a twin makes: register, profile, membership, messages, typing, receipts, ping.

use std::time::Duration;

use ruma::{
    EventId, OwnedEventId, OwnedUserId, RoomId, TransactionId, UserId,
    api::client::{
        account::{
            register::{self, LoginType},
            whoami,
        },
        appservice::request_ping,
        membership::{get_member_events, join_room_by_id, joined_members, leave_room},
        message::send_message_event,
        profile::{get_profile, set_display_name},
        receipt::create_receipt::{self, v3::ReceiptType},
        room::create_room,
        state::{get_state_event_for_key, get_state_events},
        typing::create_typing_event::{self, v3::Typing},
    },
    events::{
        AnyMessageLikeEventContent, StateEventType, receipt::ReceiptThread,
        room::member::MembershipState,
    },
};

use super::{MatrixClient, MatrixError, RetryPolicy};

impl MatrixClient {
    /// Registers a twin's account (`m.login.application_service`); an existing account is fine.
    pub async fn register_puppet(&self, localpart: &str) -> Result<(), MatrixError> {
        let mut request = register::v3::Request::new();
        request.username = Some(localpart.to_owned());
        request.login_type = Some(LoginType::ApplicationService);
        request.inhibit_login = true;
        match self.send(request, None).await {
            Ok(_) => Ok(()),
            Err(err) if err.errcode() == Some("M_USER_IN_USE") => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Sets a user's display name.
    // The generic profile-field endpoint needs Matrix 1.16 paths; this one is stable everywhere.
    #[allow(deprecated)]
    pub async fn set_display_name(&self, user: &UserId, name: &str) -> Result<(), MatrixError> {
        let request = set_display_name::v3::Request::new(user.to_owned(), Some(name.to_owned()));
        self.send(request, Some(user)).await.map(|_| ())
    }

    /// Whether `user` exists on the homeserver (its profile is found). A user the homeserver
    /// does not know answers 404.
    pub async fn user_exists(&self, user: &UserId) -> Result<bool, MatrixError> {
        match self
            .send(get_profile::v3::Request::new(user.to_owned()), None)
            .await
        {
            Ok(_) => Ok(true),
            // `M_NOT_FOUND` by the spec; Synapse also answers 404 `M_UNKNOWN` ("No row found").
            Err(MatrixError::Api { status: 404, .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Joins a room (accepting an invite).
    pub async fn join_room(&self, user: &UserId, room: &RoomId) -> Result<(), MatrixError> {
        self.send(
            join_room_by_id::v3::Request::new(room.to_owned()),
            Some(user),
        )
        .await
        .map(|_| ())
    }

    /// Leaves a room or declines an invite, with a reason others can see.
    pub async fn leave_room(
        &self,
        user: &UserId,
        room: &RoomId,
        reason: Option<&str>,
    ) -> Result<(), MatrixError> {
        let mut request = leave_room::v3::Request::new(room.to_owned());
        request.reason = reason.map(str::to_owned);
        self.send(request, Some(user)).await.map(|_| ())
    }

    /// Sends an event of any type (custom ones included) with JSON content.
    pub async fn send_raw_event(
        &self,
        user: &UserId,
        room: &RoomId,
        txn_id: &TransactionId,
        event_type: &str,
        content: &ruma::serde::Raw<AnyMessageLikeEventContent>,
    ) -> Result<OwnedEventId, MatrixError> {
        let request = send_message_event::v3::Request::new_raw(
            room.to_owned(),
            txn_id.to_owned(),
            event_type.into(),
            content.clone(),
        );
        Ok(self.send(request, Some(user)).await?.event_id)
    }

    /// Starts (`Some(timeout)`) or stops (`None`) the typing notice. Best effort: one attempt.
    pub async fn set_typing(
        &self,
        user: &UserId,
        room: &RoomId,
        timeout: Option<Duration>,
    ) -> Result<(), MatrixError> {
        let state = match timeout {
            Some(t) => Typing::Yes(create_typing_event::v3::TypingInfo::new(t)),
            None => Typing::No,
        };
        let request =
            create_typing_event::v3::Request::new(user.to_owned(), room.to_owned(), state);
        self.send_with(request, Some(user), RetryPolicy::once())
            .await
            .map(|_| ())
    }

    /// Marks `event` read by `user`.
    pub async fn mark_read(
        &self,
        user: &UserId,
        room: &RoomId,
        event: &EventId,
    ) -> Result<(), MatrixError> {
        let request =
            create_receipt::v3::Request::new(room.to_owned(), ReceiptType::Read, event.to_owned());
        let mut request = request;
        request.thread = ReceiptThread::Unthreaded;
        self.send_with(request, Some(user), RetryPolicy::once())
            .await
            .map(|_| ())
    }

    /// Asks the homeserver to ping this appservice; returns the round trip it measured.
    pub async fn ping_appservice(&self, appservice_id: &str) -> Result<Duration, MatrixError> {
        let mut request = request_ping::v1::Request::new(appservice_id.to_owned());
        request.transaction_id = Some(TransactionId::new());
        let response = self.send_with(request, None, RetryPolicy::once()).await?;
        Ok(response.duration)
    }

    /// Whether `room` has encryption enabled, as `user` sees its state.
    pub async fn room_is_encrypted(
        &self,
        user: &UserId,
        room: &RoomId,
    ) -> Result<bool, MatrixError> {
        let request = get_state_event_for_key::v3::Request::new(
            room.to_owned(),
            StateEventType::RoomEncryption,
            String::new(),
        );
        match self.send(request, Some(user)).await {
            Ok(_) => Ok(true),
            Err(err) if err.errcode() == Some("M_NOT_FOUND") => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// The content of `room`'s state event of `event_type` with an empty state key, as
    /// `user` sees it; `None` when there is none.
    pub async fn state_content(
        &self,
        user: &UserId,
        room: &RoomId,
        event_type: &str,
    ) -> Result<Option<serde_json::Value>, MatrixError> {
        let request = get_state_event_for_key::v3::Request::new(
            room.to_owned(),
            StateEventType::from(event_type),
            String::new(),
        );
        match self.send(request, Some(user)).await {
            Ok(response) => Ok(serde_json::from_str(response.event_or_content.get()).ok()),
            Err(err) if err.errcode() == Some("M_NOT_FOUND") => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Users joined to or invited into `room` (whose devices get the room key).
    pub async fn room_members(
        &self,
        user: &UserId,
        room: &RoomId,
    ) -> Result<Vec<OwnedUserId>, MatrixError> {
        let response = self
            .send(
                get_member_events::v3::Request::new(room.to_owned()),
                Some(user),
            )
            .await?;
        let mut members: Vec<OwnedUserId> = response
            .chunk
            .iter()
            .filter_map(|raw| raw.deserialize().ok())
            .filter(|event: &ruma::events::room::member::RoomMemberEvent| {
                matches!(
                    event.membership(),
                    MembershipState::Join | MembershipState::Invite
                )
            })
            .map(|event| event.state_key().to_owned())
            .collect();
        members.sort();
        members.dedup();
        Ok(members)
    }

    /// Joined members of `room` with their display names, as `user` sees them.
    pub async fn joined_members(
        &self,
        user: &UserId,
        room: &RoomId,
    ) -> Result<Vec<(OwnedUserId, Option<String>)>, MatrixError> {
        let response = self
            .send(
                joined_members::v3::Request::new(room.to_owned()),
                Some(user),
            )
            .await?;
        Ok(response
            .joined
            .into_iter()
            .map(|(id, member)| (id, member.display_name))
            .collect())
    }

    /// The current state of `room` as `user` sees it: `(type, sender, state key, content)` of
    /// each event (events that do not parse are left out).
    pub async fn room_state(
        &self,
        user: &UserId,
        room: &RoomId,
    ) -> Result<Vec<(String, OwnedUserId, String, serde_json::Value)>, MatrixError> {
        #[derive(serde::Deserialize)]
        struct State {
            #[serde(rename = "type")]
            kind: String,
            sender: OwnedUserId,
            state_key: String,
            #[serde(default)]
            content: serde_json::Value,
        }
        let response = self
            .send(
                get_state_events::v3::Request::new(room.to_owned()),
                Some(user),
            )
            .await?;
        Ok(response
            .room_state
            .into_iter()
            .filter_map(|raw| raw.deserialize_as_unchecked::<State>().ok())
            .map(|s| (s.kind, s.sender, s.state_key, s.content))
            .collect())
    }

    /// Creates a private direct chat of `user` with `invitee`, encrypted from the start.
    pub async fn create_dm(
        &self,
        user: &UserId,
        invitee: &UserId,
    ) -> Result<ruma::OwnedRoomId, MatrixError> {
        let mut request = create_room::v3::Request::new();
        request.is_direct = true;
        request.invite = vec![invitee.to_owned()];
        request.preset = Some(create_room::v3::RoomPreset::TrustedPrivateChat);
        let encryption = serde_json::json!({
            "type": "m.room.encryption",
            "state_key": "",
            "content": {"algorithm": "m.megolm.v1.aes-sha2"},
        });
        request.initial_state = vec![
            ruma::serde::Raw::new(&encryption)
                .map_err(|e| MatrixError::Protocol(format!("cannot serialize state: {e}")))?
                .cast_unchecked(),
        ];
        Ok(self.send(request, Some(user)).await?.room_id)
    }

    /// Who the homeserver thinks the as_token belongs to.
    pub async fn whoami(&self) -> Result<ruma::OwnedUserId, MatrixError> {
        let response = self
            .send_with(whoami::v3::Request::new(), None, RetryPolicy::once())
            .await?;
        Ok(response.user_id)
    }
}
