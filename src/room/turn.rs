//! One kernel turn in a room: limits, typing, read receipt, context, kernel, transcript, reply.

use std::{collections::HashMap, time::Duration};

use ruma::{EventId, RoomId, UserId};
use tokio::sync::oneshot;

use super::{
    RoomError, Rooms,
    decide::{Action, ReplyTo, Speaker},
    facts::{model_of, policy_of},
    send::{Style, message_content},
};
use crate::{
    kernel::{Audience, Message, Turn, TwinAction},
    matrix::{MatrixClient, txn_id_for},
    policy::{LimitScope, Verdict},
    storage::LogRow,
};

/// Typing notices last this long and are refreshed before they run out.
const TYPING_TIMEOUT: Duration = Duration::from_secs(30);
const TYPING_REFRESH: Duration = Duration::from_secs(20);

/// How a person is named to the model: `Bob (@bob:example.org)`.
pub(super) fn person(names: &HashMap<String, String>, user: &str) -> String {
    match names.get(user) {
        Some(name) if name != user => format!("{name} ({user})"),
        _ => user.to_owned(),
    }
}

/// What the model reads as the person's message: in a group or from someone other than the
/// owner, who says it, and (in a group) what was said before in the room.
pub(super) fn compose_input(
    text: &str,
    sender: &str,
    speaker: Speaker,
    group: bool,
    log: &[LogRow],
    names: &HashMap<String, String>,
) -> String {
    if !group && speaker == Speaker::Owner {
        return text.to_owned();
    }
    let mut input = String::new();
    if group && !log.is_empty() {
        input.push_str("Recent messages in this room, oldest first:\n");
        for row in log {
            let body = row.body.replace('\n', "\n  ");
            input.push_str(&format!("- {}: {body}\n", person(names, &row.sender)));
        }
        input.push('\n');
    }
    input.push_str(&format!(
        "Message to you from {}:\n{text}",
        person(names, sender)
    ));
    input
}

impl Rooms {
    /// Runs an [`Action::Turn`]. Failures before the kernel runs are returned (and the action
    /// retried); once the kernel has run, its result is kept and only the send is retried.
    pub(super) async fn run_turn(&self, action: &Action) -> Result<(), RoomError> {
        let Action::Turn {
            twin: twin_id,
            owner,
            room,
            event_id,
            sender,
            text,
            speaker,
            reply,
            group,
            from_bot,
        } = action
        else {
            return Ok(());
        };
        if *speaker == Speaker::Other && !self.within_limits(twin_id, room, event_id, sender).await
        {
            return Ok(());
        }
        if *from_bot && !self.limits.allow_bot_turn(room) {
            tracing::info!(%room, %sender, "bot-to-bot turn bound reached; not answering");
            return Ok(());
        }
        let twin = self.twins.ensure(owner).await?;
        if let Err(err) = self.matrix.mark_read(twin_id, room, event_id).await {
            tracing::debug!(%err, "read receipt failed");
        }
        let stop_typing = spawn_typing(self.matrix.clone(), twin_id.clone(), room.clone());

        let session = self
            .store
            .current_session(room.as_str(), twin_id.as_str())
            .await?;
        let history: Vec<Message> = self
            .store
            .recent_messages(session.id, self.history_limit as i64)
            .await?
            .iter()
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect();
        let names: HashMap<String, String> = self
            .store
            .room_members(room.as_str())
            .await?
            .into_iter()
            .filter_map(|m| m.display_name.map(|name| (m.user_id, name)))
            .collect();
        let log = if *group {
            self.store
                .recent_log(
                    room.as_str(),
                    event_id.as_str(),
                    self.context_messages as i64,
                )
                .await?
        } else {
            Vec::new()
        };
        let input = compose_input(text, sender.as_str(), *speaker, *group, &log, &names);
        let (_, settings) =
            policy_of(twin.home.clone(), owner, room, &self.access_defaults).await?;
        let model = model_of(twin.home.clone()).await?;

        let context = match speaker {
            Speaker::Owner => self.meetings_context(twin_id, twin.home.clone()).await,
            Speaker::Other => None,
        };

        let outcome = {
            let _slot = self
                .turn_slots
                .acquire()
                .await
                .map_err(|e| RoomError::Internal(e.to_string()))?;
            self.kernel
                .run_turn(
                    twin.home.clone(),
                    Turn {
                        room_id: room.to_string(),
                        history,
                        input: input.clone(),
                        audience: match speaker {
                            Speaker::Owner => Audience::Owner,
                            Speaker::Other => Audience::Public {
                                person: person(&names, sender.as_str()),
                            },
                        },
                        allowed_tools: settings.tools.clone(),
                        model,
                        context,
                    },
                )
                .await
        };
        let (answer, messages, actions) = match outcome {
            Ok(outcome) => (outcome.reply, outcome.messages, outcome.actions),
            Err(err) => {
                tracing::warn!(%room, %err, "turn failed");
                (
                    err.user_message(),
                    vec![Message::User { content: input }],
                    Vec::new(),
                )
            }
        };
        self.keep_turn(&twin.home, session.id, room, event_id, sender, &messages)
            .await?;

        let _ = stop_typing.send(());
        let mention = (*group || *speaker == Speaker::Other).then_some(sender.as_ref());
        let content = message_content(&answer, Style::Answer, reply, mention);
        let txn_id = txn_id_for(twin_id.as_str(), event_id.as_str(), 0);
        if let Err(err) = self.send_message(twin_id, room, &txn_id, content).await {
            // The turn is stored; redoing it would run the model (and its tools) twice.
            tracing::error!(%err, %room, "the answer could not be sent");
        }
        if let Err(err) = self.matrix.set_typing(twin_id, room, None).await {
            tracing::debug!(%err, "stopping typing failed");
        }
        // Requests of the turn's tools (only offered in the owner's turns).
        for (i, action) in actions.iter().enumerate() {
            let cause = format!("{event_id}:{i}");
            let done = match action {
                TwinAction::ProposeMeeting(ask) => {
                    self.start_meeting(twin_id, owner, ask).await.map(|()| None)
                }
                TwinAction::AnswerMeeting {
                    negotiation_id,
                    accept,
                } => self
                    .answer_meeting(twin_id, owner, negotiation_id.as_deref(), *accept, &cause)
                    .await
                    .map(|answer| answer.err()),
                TwinAction::CancelMeeting { negotiation_id } => self
                    .cancel_meeting(twin_id, owner, negotiation_id, &cause)
                    .await
                    .map(|answer| answer.err()),
            };
            let problem = match done {
                Ok(problem) => problem,
                Err(err) => {
                    tracing::error!(%err, %room, "a request of the turn failed");
                    Some(format!("⚠️ That did not work: {err}"))
                }
            };
            if let Some(problem) = problem {
                let txn = txn_id_for(twin_id.as_str(), &cause, 8);
                if let Err(err) = self
                    .send_notice(twin_id, room, &txn, &problem, &ReplyTo::Plain, None)
                    .await
                {
                    tracing::warn!(%err, "could not report a failed request");
                }
            }
        }
        Ok(())
    }

    /// Stores a turn's messages in the session and appends them to the room's transcript in
    /// the home (committed), where the owner can read what the twin said to anyone.
    async fn keep_turn(
        &self,
        home: &std::sync::Arc<crate::home::Home>,
        session_id: i64,
        room: &RoomId,
        event_id: &EventId,
        sender: &UserId,
        messages: &[Message],
    ) -> Result<(), RoomError> {
        let stored: Vec<String> = messages
            .iter()
            .filter_map(|m| serde_json::to_string(m).ok())
            .collect();
        self.store.append_messages(session_id, &stored).await?;
        let home = home.clone();
        let room_name = room.to_string();
        let lines: Vec<serde_json::Value> = messages
            .iter()
            .map(|message| {
                serde_json::json!({
                    "ts": now_millis(),
                    "event_id": event_id.as_str(),
                    "sender": sender.as_str(),
                    "message": message,
                })
            })
            .collect();
        tokio::task::spawn_blocking(move || -> Result<(), crate::home::HomeError> {
            for line in &lines {
                home.append_transcript(&room_name, line)?;
            }
            home.commit(&format!("session: conversation in {room_name}"))?;
            Ok(())
        })
        .await
        .map_err(|e| RoomError::Internal(e.to_string()))??;
        Ok(())
    }

    /// Applies the rate limits to a message from someone other than the owner; tells them once
    /// when they exceed it. `false`: do not answer.
    async fn within_limits(
        &self,
        twin: &UserId,
        room: &RoomId,
        event_id: &EventId,
        sender: &UserId,
    ) -> bool {
        match self.limits.check_rate(sender) {
            Verdict::Allow => true,
            Verdict::Silent => false,
            Verdict::Notify { retry_after, scope } => {
                let who = match scope {
                    LimitScope::Sender => "you are".to_owned(),
                    LimitScope::Server => format!("people on {} are", sender.server_name()),
                };
                let text = format!(
                    "⏳ {who} sending me messages faster than I can answer. I'll answer again \
                     in about {} seconds; messages until then are not answered.",
                    retry_after.as_secs().max(1)
                );
                let txn = txn_id_for(twin.as_str(), event_id.as_str(), 1);
                if let Err(err) = self
                    .send_notice(
                        twin,
                        room,
                        &txn,
                        &text,
                        &ReplyTo::Reply(event_id.to_owned()),
                        Some(sender),
                    )
                    .await
                {
                    tracing::warn!(%err, "rate limit notice failed");
                }
                false
            }
        }
    }
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Shows the twin typing until the returned sender fires (or is dropped).
fn spawn_typing(
    matrix: MatrixClient,
    twin: ruma::OwnedUserId,
    room: ruma::OwnedRoomId,
) -> oneshot::Sender<()> {
    let (tx, mut rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            if let Err(err) = matrix.set_typing(&twin, &room, Some(TYPING_TIMEOUT)).await {
                tracing::debug!(%err, "typing notice failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(TYPING_REFRESH) => {}
                _ = &mut rx => return,
            }
        }
    });
    tx
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn group_input_names_who_said_what() {
        let names: HashMap<String, String> = [
            ("@bob:x".to_owned(), "Bob".to_owned()),
            ("@carol:x".to_owned(), "Carol".to_owned()),
        ]
        .into();
        let log = vec![
            LogRow {
                event_id: "$1".into(),
                sender: "@bob:x".into(),
                body: "lunch at noon?".into(),
                ts: 0,
            },
            LogRow {
                event_id: "$2".into(),
                sender: "@dave:x".into(),
                body: "fine\nby me".into(),
                ts: 0,
            },
        ];
        insta::assert_snapshot!(compose_input(
            "what do you think?",
            "@carol:x",
            Speaker::Other,
            true,
            &log,
            &names
        ));
        assert_eq!(
            compose_input("hi", "@alice:x", Speaker::Owner, false, &log, &names),
            "hi"
        );
        assert_eq!(
            compose_input("hi", "@bob:x", Speaker::Other, false, &[], &names),
            "Message to you from Bob (@bob:x):\nhi"
        );
    }
}
