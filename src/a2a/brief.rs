//! What the model is told about its owner's meetings in an owner's turn, so that a plain
//! "yes, that works" or "call off the sync with Bob" reaches the right negotiation.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::wording::slot_text;
use crate::{
    kernel::quote,
    protocol::{Negotiation, negotiation::Phase},
};

/// Longest meeting title shown, in characters.
pub const MAX_TITLE_CHARS: usize = 80;
/// Most meetings listed per part of the brief, so many requests cannot grow every prompt.
pub const MAX_LINES_PER_PART: usize = 10;

/// What the model should know about its owner's negotiations in an owner's turn: meetings
/// waiting for the owner's answer (with the free slot put to them), meetings still being
/// negotiated, and agreed meetings still ahead, each with the id its tools take. `None` when
/// there is nothing. Titles (a peer's text) are one line between quote markers, of at most
/// [`MAX_TITLE_CHARS`]; each part lists at most [`MAX_LINES_PER_PART`].
pub fn meetings_brief(negotiations: &[Negotiation], now: DateTime<Utc>, tz: Tz) -> Option<String> {
    let mut asked = Vec::new();
    let mut running = Vec::new();
    let mut agreed = Vec::new();
    for negotiation in negotiations {
        let id = negotiation.id().as_str();
        // A peer wrote the title: one bounded line, quoted, never an instruction.
        let title = negotiation
            .request()
            .map(|r| quote::inline(&r.title, MAX_TITLE_CHARS))
            .unwrap_or_else(|| "(no title yet)".to_owned());
        let with = negotiation
            .peer()
            .map(|p| p.owner.to_string())
            .unwrap_or_else(|| "another twin".into());
        let line = format!("- `{id}`: {title} with {with}");
        match negotiation.phase() {
            Phase::AwaitingOwner { candidates } => asked.push(match candidates.first() {
                Some(slot) => format!("{line}, free {}", slot_text(slot, tz)),
                None => line,
            }),
            Phase::Agreed { slot, .. } if slot.end() > now => {
                agreed.push(format!("{line}, {}", slot_text(slot, tz)))
            }
            Phase::Agreed { .. } | Phase::Ended { .. } => {}
            _ => running.push(line),
        }
    }
    let mut brief = String::from("## Meetings in progress");
    for (heading, lines) in [
        (
            "Waiting for your owner's answer (pass it on with `answer_meeting`; give the id when \
             several wait):",
            asked,
        ),
        ("Being negotiated with other twins:", running),
        (
            "Agreed and still ahead (`cancel_meeting` calls one off):",
            agreed,
        ),
    ] {
        if !lines.is_empty() {
            let more = lines.len().saturating_sub(MAX_LINES_PER_PART);
            brief.push_str(&format!(
                "\n{heading}\n{}",
                lines[..lines.len().min(MAX_LINES_PER_PART)].join("\n")
            ));
            if more > 0 {
                brief.push_str(&format!("\n- and {more} more"));
            }
        }
    }
    brief.contains('\n').then_some(brief)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_brief_lists_what_waits_for_the_owner_what_runs_and_what_is_ahead() {
        use crate::protocol::negotiation::{Input, tests::Pair};
        let mut pair = Pair::new();
        pair.bob.policy.auto_accept = false;
        pair.start();
        let brief = |side: &crate::protocol::negotiation::tests::Side, now| {
            meetings_brief(
                std::slice::from_ref(&side.n),
                now,
                chrono_tz::Europe::London,
            )
        };
        let alice = brief(&pair.alice, pair.now).unwrap();
        assert!(
            alice.contains(
                "Being negotiated with other twins:\n- `n-42`: <<<quoted Roadmap coffee quoted>>> with @bob:hs2"
            ),
            "{alice}"
        );
        let bob = brief(&pair.bob, pair.now).unwrap();
        assert!(
            bob.contains("Waiting for your owner's answer")
                && bob.contains("- `n-42`: <<<quoted Roadmap coffee quoted>>> with @alice:hs1, free Mon 04 May, 09:00–09:30 (Europe/London)"),
            "{bob}"
        );
        let Phase::AwaitingOwner { candidates } = pair.bob.n.phase().clone() else {
            panic!("Bob's twin should wait for Bob");
        };
        let outputs = pair
            .bob
            .handle(
                Input::OwnerApprove {
                    slot: candidates[0],
                },
                pair.now,
            )
            .unwrap();
        pair.deliver(false, outputs);
        let alice = brief(&pair.alice, pair.now).unwrap();
        assert!(
            alice.contains("Agreed and still ahead") && alice.contains("Mon 04 May, 09:00–09:30"),
            "{alice}"
        );
        let long_after = pair.now + chrono::TimeDelta::days(30);
        assert_eq!(brief(&pair.alice, long_after), None);
    }

    #[test]
    fn a_thousand_requests_do_not_grow_the_brief() {
        use crate::protocol::negotiation::tests::Pair;
        let mut pair = Pair::new();
        pair.bob.policy.auto_accept = false;
        pair.start();
        let brief = |n: usize| {
            meetings_brief(
                &vec![pair.bob.n.clone(); n],
                pair.now,
                chrono_tz::Europe::London,
            )
            .unwrap()
        };
        let (eleven, thousand) = (brief(11), brief(1_000));
        assert_eq!(thousand.lines().count(), eleven.lines().count());
        assert!(thousand.len() <= eleven.len() + 4, "{thousand}");
        assert!(thousand.ends_with("- and 990 more"), "{thousand}");
    }
}
