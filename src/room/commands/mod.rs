//! Running `!ai` commands; every command gets an answer (unknown ones get the help).

mod held;

use std::sync::Arc;

use ruma::events::room::member::MembershipState;
use ruma::{EventId, RoomId, UserId};

use super::{
    Pairing, RoomError,
    command::{Command, help_text},
    decide::ReplyTo,
    limits::Limits,
};
use crate::{
    budget::{BudgetKeeper, Limit},
    config::AccessConfig,
    crypto::Crypto,
    kernel::Kernel,
    matrix::{MatrixClient, TxnPart, txn_id_for},
    negotiator::Negotiator,
    outbox::Outbox,
    policy::{AccessPolicy, PolicyError, Verdict},
    storage::{HeldRow, SessionAudience, Store},
    twin::{TwinSettings, Twins, model_of, policy_of},
};

/// Runs `!ai` commands.
#[derive(Debug)]
pub struct CommandRunner {
    store: Store,
    matrix: MatrixClient,
    twins: Arc<Twins>,
    kernel: Arc<Kernel>,
    crypto: Arc<Crypto>,
    outbox: Arc<Outbox>,
    negotiator: Arc<Negotiator>,
    pairing: Arc<Pairing>,
    limits: Arc<Limits>,
    budgets: Arc<BudgetKeeper>,
    access_defaults: AccessConfig,
    /// Whether spoken replies can be made (`[media.speech]`), for `!ai voice`.
    speech: bool,
}

impl CommandRunner {
    /// A runner over these stages.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        matrix: MatrixClient,
        twins: Arc<Twins>,
        kernel: Arc<Kernel>,
        crypto: Arc<Crypto>,
        outbox: Arc<Outbox>,
        negotiator: Arc<Negotiator>,
        pairing: Arc<Pairing>,
        limits: Arc<Limits>,
        budgets: Arc<BudgetKeeper>,
        access_defaults: AccessConfig,
    ) -> Self {
        Self {
            budgets,
            store,
            matrix,
            twins,
            kernel,
            crypto,
            outbox,
            negotiator,
            pairing,
            limits,
            access_defaults,
            speech: false,
        }
    }

    /// Says whether a speech service is set up (`[media.speech]`), so that `!ai voice on`
    /// can tell the owner when spoken replies cannot come yet.
    pub fn with_speech(mut self, configured: bool) -> Self {
        self.speech = configured;
        self
    }

    /// Runs `command` from `sender` and answers in the room; every command gets an answer.
    /// An approved held call is returned, for the turn runner to run and finish.
    pub async fn run(
        &self,
        twin_id: &UserId,
        owner: &UserId,
        room: &RoomId,
        event_id: &EventId,
        sender: &UserId,
        command: &Command,
    ) -> Result<Option<HeldRow>, RoomError> {
        // Anyone but the owner shares the rate limit of their messages: commands cannot be
        // used to make the twin talk more than messages can.
        if sender != owner {
            match self.limits.check_rate(sender) {
                Verdict::Allow => {}
                Verdict::Silent => return Ok(None),
                Verdict::Notify { retry_after, .. } => {
                    let text = format!(
                        "⏳ You are sending me commands faster than I answer; I'll answer again in \
                         about {} seconds.",
                        retry_after.as_secs().max(1)
                    );
                    let txn =
                        txn_id_for(twin_id.as_str(), event_id.as_str(), TxnPart::CommandAnswer);
                    self.outbox
                        .send_notice(
                            twin_id,
                            room,
                            &txn,
                            &text,
                            &ReplyTo::Reply(event_id.to_owned()),
                            None,
                        )
                        .await?;
                    return Ok(None);
                }
            }
        }
        let mut approved = None;
        let answer = if command.owner_only() && sender != owner {
            format!("Only {owner} can do that.")
        } else if let Command::ApproveHeld(n) | Command::DenyHeld(n) = command {
            let approve = matches!(command, Command::ApproveHeld(_));
            let (answer, held) = self
                .decide_held(twin_id, owner, room, event_id, *n, approve)
                .await?;
            approved = held;
            answer
        } else if let Command::Confirm(n) = command {
            self.confirm(twin_id, owner, room, *n).await?
        } else {
            self.command_answer(twin_id, owner, room, event_id, command)
                .await?
        };
        if matches!(command, Command::Leave) && sender == owner {
            self.leave(twin_id, room, event_id, &answer).await?;
            return Ok(None);
        }
        let txn = txn_id_for(twin_id.as_str(), event_id.as_str(), TxnPart::CommandAnswer);
        self.outbox
            .send_notice(
                twin_id,
                room,
                &txn,
                &answer,
                &ReplyTo::Reply(event_id.to_owned()),
                None,
            )
            .await?;
        Ok(approved)
    }

    async fn command_answer(
        &self,
        twin_id: &UserId,
        owner: &UserId,
        room: &RoomId,
        event_id: &EventId,
        command: &Command,
    ) -> Result<String, RoomError> {
        let twin = self.twins.ensure(owner).await?;
        let home = twin.home.clone();
        Ok(match command {
            Command::Help => help_text(owner.as_str()),
            Command::Unknown(words) => format!(
                "I don't know the command `{}`.\n\n{}",
                words.replace('`', "'"),
                help_text(owner.as_str())
            ),
            Command::Status => self.status(twin_id, owner, room, &home).await?,
            Command::Reset => {
                for audience in SessionAudience::ALL {
                    self.store.new_session(room, twin_id, audience).await?;
                }
                "🔄 New conversation: I no longer use this room's earlier messages.".to_owned()
            }
            Command::Leave => "👋 Leaving this room. Invite me again any time.".to_owned(),
            Command::Model(choice) => self.model_command(&home, choice.as_deref()).await?,
            Command::Usage => self.budgets.state(twin_id, home.clone()).await?.describe(),
            Command::Budget(words) => self.budget_command(twin_id, &home, words).await?,
            Command::Voice(on) => voice_command(&home, *on, self.speech).await?,
            Command::Approve(user) | Command::Deny(user) => {
                let approve = matches!(command, Command::Approve(_));
                let access = self
                    .edit_access(
                        &home,
                        owner,
                        &format!("policy: {} {user}", verb(approve)),
                        {
                            let user = user.clone();
                            move |file| {
                                if approve {
                                    file.approve(&user);
                                } else {
                                    file.deny(&user);
                                }
                                Ok(String::new())
                            }
                        },
                    )
                    .await?;
                match access {
                    Ok((_, policy)) => {
                        self.pairing
                            .answer(twin_id, owner, event_id, user, approve, &policy)
                            .await?
                    }
                    Err(err) => format!("⚠️ {err}"),
                }
            }
            Command::Policy(words) => self.policy_command(&home, owner, room, words).await?,
            Command::Bridge(words) => self.bridge_command(&home, room, words).await?,
            Command::CancelMeeting(id) => {
                match self
                    .negotiator
                    .cancel_meeting(twin_id, owner, id, event_id.as_str())
                    .await?
                {
                    Ok(done) | Err(done) => done,
                }
            }
            // Decided in `run`.
            Command::ApproveHeld(_) | Command::DenyHeld(_) | Command::Confirm(_) => {
                help_text(owner.as_str())
            }
            Command::Meeting { accept, id } => {
                match self
                    .negotiator
                    .answer_meeting(twin_id, owner, id.as_deref(), *accept, event_id.as_str())
                    .await?
                {
                    Ok(done) | Err(done) => done,
                }
            }
        })
    }

    async fn status(
        &self,
        twin_id: &UserId,
        owner: &UserId,
        room: &RoomId,
        home: &std::sync::Arc<crate::home::Home>,
    ) -> Result<String, RoomError> {
        let (_, settings) = policy_of(home.clone(), owner, room, &self.access_defaults).await?;
        let model = match model_of(home.clone()).await? {
            Some(name) => format!("`{name}` (set for this twin; `!ai model default` resets)"),
            None => self.kernel.describe(),
        };
        let backlog = self.store.inbox_backlog().await?;
        let encrypted = self.store.room_encrypted(room).await?;
        let device = match self.crypto.device_id(twin_id).await {
            Some(device) => format!("device `{device}`"),
            None => "no device yet".to_owned(),
        };
        let encryption = match encrypted {
            Some(true) => format!("🔒 encrypted; {device}"),
            Some(false) => format!("not encrypted; {device}"),
            None => format!("unknown yet; {device}"),
        };
        let members = self.store.room_members(room).await?.len();
        Ok(format!(
            "**Status of {twin_id}**\n\n\
             - Model: {model}\n\
             - Queue: {backlog} event(s) waiting\n\
             - This room: {members} member(s), {encryption}\n\n\
             **Room policy**\n\n{}",
            settings.describe()
        ))
    }

    async fn model_command(
        &self,
        home: &std::sync::Arc<crate::home::Home>,
        choice: Option<&str>,
    ) -> Result<String, RoomError> {
        let home = home.clone();
        let choice = choice.map(str::to_owned);
        let configured = self.kernel.describe();
        tokio::task::spawn_blocking(move || -> Result<String, RoomError> {
            let mut settings = TwinSettings::load(&home)?;
            let Some(choice) = choice else {
                return Ok(match settings.model {
                    Some(name) => format!("Model: `{name}` (set for this twin)."),
                    None => format!("Model: {configured}."),
                });
            };
            let answer = if choice == "default" {
                settings.model = None;
                format!("Model reset to the service default: {configured}.")
            } else {
                settings.model = Some(choice.clone());
                format!("Model set to `{choice}` for this twin.")
            };
            settings.save(&home)?;
            home.commit("settings: model changed by command")?;
            Ok(answer)
        })
        .await
        .map_err(|e| RoomError::Internal(e.to_string()))?
    }

    /// `!ai budget [daily|monthly <tokens>|off|default]`: written to `[budget]` of
    /// `system/settings.toml` (committed); without words, the budget and today's use.
    async fn budget_command(
        &self,
        twin_id: &UserId,
        home: &Arc<crate::home::Home>,
        words: &[String],
    ) -> Result<String, RoomError> {
        const USAGE: &str = "Say `!ai budget daily <tokens>` or `!ai budget monthly <tokens>`; \
                             `off` for no limit, `default` for the service's.";
        let [period, limit] = words else {
            return Ok(self.budgets.state(twin_id, home.clone()).await?.describe());
        };
        let period = period.to_ascii_lowercase();
        if period != "daily" && period != "monthly" {
            return Ok(format!("⚠️ {USAGE}"));
        }
        let limit = if limit.eq_ignore_ascii_case("default") {
            None
        } else {
            match Limit::parse(limit) {
                Some(limit) => Some(limit),
                None => {
                    return Ok(format!(
                        "⚠️ `{}` is no number of tokens. {USAGE}",
                        limit.replace('`', "'")
                    ));
                }
            }
        };
        let home_for_write = home.clone();
        let daily = period == "daily";
        tokio::task::spawn_blocking(move || -> Result<(), RoomError> {
            let mut settings = TwinSettings::load(&home_for_write)?;
            if daily {
                settings.budget.daily = limit;
            } else {
                settings.budget.monthly = limit;
            }
            settings.save(&home_for_write)?;
            home_for_write.commit("settings: token budget changed by command")?;
            Ok(())
        })
        .await
        .map_err(|e| RoomError::Internal(e.to_string()))??;
        self.budgets.budget_changed(twin_id).await?;
        let state = self.budgets.state(twin_id, home.clone()).await?;
        let now = match if daily {
            state.budget.daily
        } else {
            state.budget.monthly
        } {
            Some(n) => format!("{} tokens", crate::budget::grouped(n)),
            None => "no limit".to_owned(),
        };
        let source = if limit.is_none() {
            " (the service's default)"
        } else {
            ""
        };
        Ok(format!(
            "✅ The {period} token budget is now {now}{source}.\n\n{}",
            state.describe()
        ))
    }

    /// `!ai bridge answer|read|off`: only in a portal; written to `system/bridges.toml`.
    async fn bridge_command(
        &self,
        home: &Arc<crate::home::Home>,
        room: &RoomId,
        words: &[String],
    ) -> Result<String, RoomError> {
        if self.store.portal(room).await?.is_none() {
            return Ok(
                "This room is no bridged chat (no trusted bridge bot marked it as its \
                       portal); `!ai bridge` works in bridged chats only."
                    .to_owned(),
            );
        }
        let home = home.clone();
        let room = room.to_owned();
        let words = words.to_vec();
        tokio::task::spawn_blocking(move || -> Result<String, RoomError> {
            let mut settings = match crate::bridge::BridgeSettings::load(&home) {
                Ok(settings) => settings,
                Err(err) => return Ok(format!("⚠️ {err}; fix the file first.")),
            };
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            match settings.apply_command(&room, &words) {
                Ok(said) => {
                    settings
                        .save(&home)
                        .map_err(|e| RoomError::Internal(e.to_string()))?;
                    home.commit(&format!("bridges: {} in {room}", words.join(" ")))?;
                    Ok(said)
                }
                Err(err) => Ok(format!("⚠️ {err}")),
            }
        })
        .await
        .map_err(|e| RoomError::Internal(e.to_string()))?
    }

    async fn policy_command(
        &self,
        home: &std::sync::Arc<crate::home::Home>,
        owner: &UserId,
        room: &RoomId,
        words: &[String],
    ) -> Result<String, RoomError> {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match words.split_first() {
            None => {
                let (access, settings) =
                    policy_of(home.clone(), owner, room, &self.access_defaults).await?;
                Ok(format!(
                    "**Who may talk with me**\n\n{}\n\n**This room**\n\n{}",
                    access.describe(),
                    settings.describe()
                ))
            }
            Some((&"room", rest)) => {
                let home = home.clone();
                let room = room.to_owned();
                let rest: Vec<String> = rest.iter().map(|w| (*w).to_owned()).collect();
                tokio::task::spawn_blocking(move || -> Result<String, RoomError> {
                    let mut settings = match crate::policy::RoomSettings::load(&home, &room) {
                        Ok(settings) => settings,
                        Err(err) => return Ok(format!("⚠️ {err}; fix the file first.")),
                    };
                    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
                    match settings.apply_command(&rest) {
                        Ok(said) => {
                            save_room(&settings, &home, &room)?;
                            home.commit(&format!("policy: room {room}"))?;
                            Ok(said)
                        }
                        Err(err) => Ok(format!("⚠️ {err}")),
                    }
                })
                .await
                .map_err(|e| RoomError::Internal(e.to_string()))?
            }
            Some(_) => {
                let owned: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
                let result = self
                    .edit_access(home, owner, &format!("policy: {}", words.join(" ")), {
                        move |file| {
                            let words: Vec<&str> = owned.iter().map(String::as_str).collect();
                            file.apply_command(&words)
                        }
                    })
                    .await?;
                Ok(match result {
                    Ok((said, _)) => said,
                    Err(err) => format!("⚠️ {err}"),
                })
            }
        }
    }

    /// Changes the owner's `system/access.toml` with `edit`, then saves and commits it. A
    /// broken existing file is not overwritten: the owner is told to fix it.
    async fn edit_access<F>(
        &self,
        home: &std::sync::Arc<crate::home::Home>,
        owner: &UserId,
        message: &str,
        edit: F,
    ) -> Result<Result<(String, AccessPolicy), PolicyError>, RoomError>
    where
        F: FnOnce(&mut crate::policy::AccessFile) -> Result<String, PolicyError> + Send + 'static,
    {
        let home = home.clone();
        let owner = owner.to_owned();
        let defaults = self.access_defaults.clone();
        let message = message.to_owned();
        tokio::task::spawn_blocking(move || {
            let policy = match AccessPolicy::load(&home, &owner, &defaults) {
                Ok(policy) => policy,
                Err(err) => return Ok(Err(err)),
            };
            let mut file = policy.file().clone();
            let said = match edit(&mut file) {
                Ok(said) => said,
                Err(err) => return Ok(Err(err)),
            };
            let policy = match AccessPolicy::new(&owner, file.clone(), &defaults) {
                Ok(policy) => policy,
                Err(err) => return Ok(Err(err)),
            };
            if let Err(err) = file.save(&home) {
                return Ok(Err(err));
            }
            home.commit(&message)?;
            Ok(Ok((said, policy)))
        })
        .await
        .map_err(|e| RoomError::Internal(e.to_string()))?
    }

    async fn leave(
        &self,
        twin_id: &UserId,
        room: &RoomId,
        event_id: &EventId,
        answer: &str,
    ) -> Result<(), RoomError> {
        let txn = txn_id_for(twin_id.as_str(), event_id.as_str(), TxnPart::CommandAnswer);
        self.outbox
            .send_notice(
                twin_id,
                room,
                &txn,
                answer,
                &ReplyTo::Reply(event_id.to_owned()),
                None,
            )
            .await?;
        self.matrix.leave_room(twin_id, room, None).await?;
        self.store
            .set_membership(room, twin_id, &MembershipState::Leave)
            .await?;
        Ok(())
    }
}

fn verb(approve: bool) -> &'static str {
    if approve { "approve" } else { "deny" }
}

fn save_room(
    settings: &crate::policy::RoomSettings,
    home: &crate::home::Home,
    room: &RoomId,
) -> Result<(), RoomError> {
    settings
        .save(home, room)
        .map_err(|e| RoomError::Internal(e.to_string()))
}

/// `!ai voice on|off`: `voice_replies` in `system/settings.toml`, a git commit.
async fn voice_command(
    home: &Arc<crate::home::Home>,
    on: bool,
    speech: bool,
) -> Result<String, RoomError> {
    let home = home.clone();
    tokio::task::spawn_blocking(move || -> Result<(), RoomError> {
        let mut settings = TwinSettings::load(&home)?;
        settings.voice_replies = Some(on);
        settings.save(&home)?;
        home.commit(&format!(
            "settings: spoken replies {} by command",
            if on { "on" } else { "off" }
        ))?;
        Ok(())
    })
    .await
    .map_err(|e| RoomError::Internal(e.to_string()))??;
    Ok(match (on, speech) {
        (true, true) => "✅ I will answer your voice messages with a spoken reply too.".to_owned(),
        (true, false) => "✅ Noted: spoken replies are on, but no speech service is set up yet \
             (the admin's `[media.speech]`), so my answers stay in text until there is one."
            .to_owned(),
        (false, _) => "✅ I will answer your voice messages in text only.".to_owned(),
    })
}
