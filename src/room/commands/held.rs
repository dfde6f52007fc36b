//! The owner's decisions on what the twin held for them: `!ai approve <n>` and `!ai deny <n>`
//! (risky calls from rooms others read), `!ai confirm [n]` (proposed policy changes). Held
//! things run or apply only on the owner's command in their own DM, never on a message in a
//! shared room; each is decided once.

use ruma::{EventId, RoomId, UserId};

use super::CommandRunner;
use crate::{
    kernel::{PolicyChange, ToolRequest},
    policy::{AccessFile, AccessPolicy, proposal},
    room::RoomError,
    storage::{HeldKind, HeldRow, now_ms},
};

/// How long a held action waits for the owner.
const HELD_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// The answer where the owner may not decide.
const ONLY_IN_DM: &str = "✋ I run held actions and apply proposed changes only when you say so \
     in our DM, where nobody else can write. Send the command there.";

impl CommandRunner {
    /// Approves (returned, for the turn runner to run) or drops held action `n`.
    pub(super) async fn decide_held(
        &self,
        twin: &UserId,
        owner: &UserId,
        room: &RoomId,
        event: &EventId,
        n: i64,
        approve: bool,
    ) -> Result<(String, Option<HeldRow>), RoomError> {
        if !self.outbox.is_owner_dm(twin, owner, room).await? {
            return Ok((ONLY_IN_DM.to_owned(), None));
        }
        let held = match self.pending(twin, n, Some(event)).await? {
            Ok(held) => held,
            Err(answer) => return Ok((answer, None)),
        };
        if !approve {
            self.store.decide_held(twin, n, "denied").await?;
            return Ok((format!("🗑️ Dropped #{n}: {}.", held.summary), None));
        }
        if held.kind == HeldKind::Policy {
            return Ok((self.apply_policy(twin, owner, &held).await?, None));
        }
        if !self.store.approve_held(twin, n, event.as_str()).await? {
            return Ok((format!("#{n} was already decided."), None));
        }
        let answer = format!(
            "✅ Approved #{n}: I {} now and finish in {}.",
            held.summary, held.room_id
        );
        Ok((answer, Some(held)))
    }

    /// Applies proposed policy change `n` (or the only one waiting).
    pub(super) async fn confirm(
        &self,
        twin: &UserId,
        owner: &UserId,
        room: &RoomId,
        n: Option<i64>,
    ) -> Result<String, RoomError> {
        if !self.outbox.is_owner_dm(twin, owner, room).await? {
            return Ok(ONLY_IN_DM.to_owned());
        }
        let n = match n {
            Some(n) => n,
            None => {
                let waiting = self.store.pending_held(twin, HeldKind::Policy).await?;
                match waiting.as_slice() {
                    [] => return Ok("There is no proposed change waiting.".to_owned()),
                    [one] => one.number,
                    several => {
                        let numbers: Vec<String> =
                            several.iter().map(|h| format!("#{}", h.number)).collect();
                        return Ok(format!(
                            "Several changes wait ({}); say `!ai confirm <n>`.",
                            numbers.join(", ")
                        ));
                    }
                }
            }
        };
        let held = match self.pending(twin, n, None).await? {
            Ok(held) => held,
            Err(answer) => return Ok(answer),
        };
        if held.kind != HeldKind::Policy {
            return Ok(format!(
                "#{n} is a held action, not a policy change: `!ai approve {n}` runs it."
            ));
        }
        self.apply_policy(twin, owner, &held).await
    }

    /// Held action `n` when it still waits, or when the command `replay` itself approved it
    /// (the same command again, after a crash cut its run short); otherwise what to tell the
    /// owner. An expired one is marked so.
    async fn pending(
        &self,
        twin: &UserId,
        n: i64,
        replay: Option<&EventId>,
    ) -> Result<Result<HeldRow, String>, RoomError> {
        let Some(held) = self.store.held_action(twin, n).await? else {
            return Ok(Err(format!(
                "There is nothing numbered #{n} waiting for you."
            )));
        };
        if held.state == "approved"
            && replay.is_some_and(|event| held.decided_by.as_deref() == Some(event.as_str()))
        {
            return Ok(Ok(held));
        }
        if held.state != "pending" {
            return Ok(Err(format!("#{n} was already {}.", held.state)));
        }
        if now_ms() - held.created_at > HELD_TTL_MS {
            self.store.decide_held(twin, n, "expired").await?;
            return Ok(Err(format!(
                "#{n} waited more than a day and expired; ask me again if you still want it."
            )));
        }
        Ok(Ok(held))
    }

    /// Checks the proposed content again, writes and commits it.
    async fn apply_policy(
        &self,
        twin: &UserId,
        owner: &UserId,
        held: &HeldRow,
    ) -> Result<String, RoomError> {
        let n = held.number;
        let Ok(ToolRequest::ProposePolicy(change)) =
            serde_json::from_str::<ToolRequest>(&held.payload)
        else {
            return Err(RoomError::Internal(format!(
                "proposed change {n} cannot be read"
            )));
        };
        let home = self.twins.ensure(owner).await?.home.clone();
        let owner_id = owner.to_owned();
        let defaults = self.access_defaults.clone();
        let checked = {
            let change = change.clone();
            let home = home.clone();
            tokio::task::spawn_blocking(move || check(&home, &owner_id, &defaults, &change))
                .await
                .map_err(|e| RoomError::Internal(e.to_string()))?
        };
        if let Err(problem) = checked {
            self.store.decide_held(twin, n, "denied").await?;
            return Ok(format!(
                "⚠️ #{n} cannot be applied: {problem}. Nothing changed."
            ));
        }
        // Written before it is marked applied: a crash in between leaves it pending, and
        // confirming again finds the file already as proposed (see `check`).
        let PolicyChange { path, content, .. } = change;
        let message = format!("policy: {path} changed as the owner confirmed (#{n})");
        let written = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || -> Result<(), crate::home::HomeError> {
                home.write_atomic(&path, content.as_bytes())?;
                home.commit(&message)?;
                Ok(())
            })
            .await
            .map_err(|e| RoomError::Internal(e.to_string()))?
        };
        if let Err(err) = written {
            return Ok(format!("⚠️ #{n} could not be written: {err}."));
        }
        if !self.store.decide_held(twin, n, "approved").await? {
            return Ok(format!("#{n} was already decided."));
        }
        Ok(format!("✅ Applied #{n}: `{path}` is changed."))
    }
}

/// Whether `change` may be applied now: still a policy file, valid content; an access file
/// must also compile into a policy for `owner`.
fn check(
    home: &crate::home::Home,
    owner: &UserId,
    defaults: &crate::config::AccessConfig,
    change: &PolicyChange,
) -> Result<(), String> {
    match proposal::policy_file(home, &change.path) {
        Ok(Some(path)) if path == change.path => {}
        Ok(_) => return Err(format!("{} is not a policy file", change.path)),
        Err(err) => return Err(err.to_string()),
    }
    let now = match home.read_to_string(&change.path) {
        Ok(text) => Some(text),
        Err(crate::home::HomeError::NotFound(_)) => None,
        Err(err) => return Err(err.to_string()),
    };
    // Already as proposed: applied before a crash kept it from being marked so.
    let applied = now.as_deref() == Some(change.content.as_str());
    if !applied && proposal::base_of(now.as_deref()) != change.base {
        return Err(format!(
            "{} changed after I showed you the diff; ask me again for the change you want",
            change.path
        ));
    }
    proposal::check_content(&change.path, &change.content)?;
    if change.path == crate::policy::ACCESS_FILE {
        let file = AccessFile::parse(&change.content, &change.path).map_err(|e| e.to_string())?;
        AccessPolicy::new(owner, file, defaults).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_change_applies_only_to_the_file_it_was_shown_against() {
        let dir = tempfile::tempdir().unwrap();
        let home =
            crate::home::Home::open_or_create(&dir.path().join("h"), None, "@alice:x").unwrap();
        let owner = ruma::user_id!("@alice:x");
        let defaults = crate::config::AccessConfig::default();
        let path = crate::policy::ACCESS_FILE;
        let old = home.read_to_string(path).ok();
        let change = PolicyChange {
            path: path.to_owned(),
            content: "dm = [\"@bob:x\"]\n".to_owned(),
            diff: String::new(),
            base: proposal::base_of(old.as_deref()),
        };
        assert_eq!(check(&home, owner, &defaults, &change), Ok(()));
        home.write_atomic(path, b"dm = [\"@carol:x\"]\n").unwrap();
        let stale = check(&home, owner, &defaults, &change).unwrap_err();
        assert!(stale.contains("changed after"), "{stale}");
        let invalid = PolicyChange {
            content: "dm = [".to_owned(),
            base: proposal::base_of(Some("dm = [\"@carol:x\"]\n")),
            ..change
        };
        assert!(check(&home, owner, &defaults, &invalid).is_err());
    }
}
