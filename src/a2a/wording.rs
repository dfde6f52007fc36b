//! What owners are told about negotiations, in their own time zone. Templates, not the model:
//! these messages carry dates and times that must be exactly right.

use chrono_tz::Tz;

use crate::protocol::{Interval, events::DeclineReason, negotiation::Notice};

/// `Tue 24 Nov, 10:00–10:30 (Europe/Berlin)`.
pub fn slot_text(slot: &Interval, tz: Tz) -> String {
    let start = slot.start().with_timezone(&tz);
    let end = slot.end().with_timezone(&tz);
    format!(
        "{}–{} ({})",
        start.format("%a %d %b, %H:%M"),
        end.format("%H:%M"),
        tz.name()
    )
}

/// The owner's message for `notice` about the meeting `title` with `peer` (`negotiation` names
/// it in commands).
pub fn notice_text(notice: &Notice, title: &str, peer: &str, negotiation: &str, tz: Tz) -> String {
    match notice {
        Notice::Agreed { slot, .. } => format!(
            "📅 Agreed with {peer}: **{title}**, {}. It's in your calendar (`data/calendar.ics`).",
            slot_text(slot, tz)
        ),
        Notice::AskOwner { from, slots } => {
            let first = slots
                .first()
                .map(|slot| slot_text(slot, tz))
                .unwrap_or_else(|| "no free slot".into());
            format!(
                "🤝 {from}'s twin asks for a meeting: **{title}**. You're free {first}. Shall I \
                 accept? Answer in your own words, or `!ai meeting accept {negotiation}` / \
                 `!ai meeting decline {negotiation}`."
            )
        }
        Notice::NoCommonSlot => format!(
            "😕 {peer} and you have no common free time for **{title}** in that window. Try a \
             wider window?"
        ),
        Notice::Declined { reason, text } => {
            let why = match reason {
                DeclineReason::NoCommonSlot => "no common free time",
                DeclineReason::NotAllowed => "their twin doesn't take requests from you",
                DeclineReason::OwnerDeclined => "they said no",
                DeclineReason::Timeout => "it took too long",
                DeclineReason::Cancelled => "it was called off",
                DeclineReason::Other => "another reason",
            };
            let text = text
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            format!("❌ {peer} declined **{title}**: {why}{text}.")
        }
        Notice::TimedOut => {
            format!("⌛ No answer about **{title}** with {peer} in time; I gave up.")
        }
        Notice::Cancelled { reason } => {
            format!("🗑️ {peer} cancelled **{title}** ({reason}); I removed it from your calendar.")
        }
        Notice::Failed { code, detail } => {
            format!("⚠️ The negotiation about **{title}** with {peer} failed ({code:?}: {detail}).")
        }
    }
}
