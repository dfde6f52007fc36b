//! `propose_meeting` and `answer_meeting`: the owner's requests that start or answer an
//! AI-to-AI negotiation. The tools only check and record; the room session runs them after
//! the turn, and the protocol code (not the model) chooses slots.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ToolContext, ToolResult, object_schema, parse_args};
use crate::kernel::{
    action::{MeetingAsk, ToolRequest},
    provider::ToolSpec,
};

pub(super) fn specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "propose_meeting".into(),
            description: "Ask another person's AI twin for a meeting on your owner's behalf. \
                          The twins agree on a time between themselves (only free/busy is \
                          shared) and your owner is told the outcome. Use it when your owner \
                          asks to find time with someone."
                .into(),
            parameters: object_schema(
                json!({
                    "with": {"type": "string", "description": "Matrix ID of the other person, e.g. @bob:example.org"},
                    "title": {"type": "string", "description": "What the meeting is about"},
                    "duration_minutes": {"type": "integer", "minimum": 5, "maximum": 480},
                    "window_start": {"type": "string", "description": "Earliest start: RFC 3339 date-time or YYYY-MM-DD (start of that day)"},
                    "window_end": {"type": "string", "description": "Latest end: RFC 3339 date-time or YYYY-MM-DD (end of that day)"},
                    "time_zone": {"type": "string", "description": "Your owner's IANA time zone, e.g. Europe/Berlin"},
                }),
                &[
                    "with",
                    "title",
                    "duration_minutes",
                    "window_start",
                    "window_end",
                    "time_zone",
                ],
            ),
        },
        ToolSpec {
            name: "cancel_meeting".into(),
            description: "Call off a meeting your owner agreed with someone through you (or one \
                          still being negotiated). The id is the meeting's UID in \
                          data/calendar.ics. The other twin is told and both calendars drop it."
                .into(),
            parameters: object_schema(
                json!({"negotiation_id": {"type": "string", "description": "The meeting's id, as listed under Meetings in progress"}}),
                &["negotiation_id"],
            ),
        },
        ToolSpec {
            name: "answer_meeting".into(),
            description: "Give your owner's answer to a meeting you asked them about.".into(),
            parameters: object_schema(
                json!({
                    "negotiation_id": {"type": "string", "description": "Omit when only one meeting is waiting"},
                    "accept": {"type": "boolean"},
                }),
                &["accept"],
            ),
        },
    ]
}

#[derive(Deserialize)]
struct ProposeArgs {
    with: String,
    title: String,
    duration_minutes: u32,
    window_start: String,
    window_end: String,
    time_zone: String,
}

/// A date-time, or a date taken as the start (or, with `end`, the end) of that day in `tz`.
fn instant(text: &str, tz: chrono_tz::Tz, end: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(at.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is neither an RFC 3339 date-time nor YYYY-MM-DD"))?;
    let day = if end {
        date.succ_opt().unwrap_or(date)
    } else {
        date
    };
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|at| at.with_timezone(&Utc))
        .ok_or_else(|| format!("{text:?} does not exist in {tz}"))
}

pub(super) async fn propose_meeting(ctx: &ToolContext, args: &Value) -> ToolResult {
    let expected = r#"{"with": "@user:server", "title": string, "duration_minutes": 5..480, "window_start": string, "window_end": string, "time_zone": "Area/City"}"#;
    let args: ProposeArgs = parse_args("propose_meeting", args, expected)?;
    let with = ruma::OwnedUserId::try_from(args.with.trim())
        .map_err(|e| format!("with: {:?} is not a Matrix user ID ({e})", args.with))?;
    if !(5..=480).contains(&args.duration_minutes) {
        return Err("duration_minutes must be between 5 and 480".into());
    }
    let title = args.title.trim().to_owned();
    if title.is_empty() || title.chars().count() > 200 {
        return Err("title must be 1 to 200 characters".into());
    }
    let tz: chrono_tz::Tz = args
        .time_zone
        .trim()
        .parse()
        .map_err(|_| format!("time_zone {:?} is not an IANA zone", args.time_zone))?;
    let window_start = instant(&args.window_start, tz, false)?;
    let window_end = instant(&args.window_end, tz, true)?;
    if window_end <= window_start {
        return Err("window_end must be after window_start".into());
    }
    if window_end - window_start > chrono::TimeDelta::days(62) {
        return Err("the window can be at most 62 days".into());
    }
    let ask = MeetingAsk {
        with: with.clone(),
        title,
        duration_minutes: args.duration_minutes,
        window_start,
        window_end,
        time_zone: tz.name().to_owned(),
    };
    ctx.record(ToolRequest::ProposeMeeting(ask))?;
    Ok(format!(
        "Started: I'm asking {with}'s twin for {} minutes between {} and {} (UTC). Your owner \
         will be told the outcome; tell them you're on it.",
        args.duration_minutes,
        window_start.format("%Y-%m-%d %H:%M"),
        window_end.format("%Y-%m-%d %H:%M"),
    ))
}

#[derive(Deserialize)]
struct CancelArgs {
    negotiation_id: String,
}

pub(super) async fn cancel_meeting(ctx: &ToolContext, args: &Value) -> ToolResult {
    let args: CancelArgs = parse_args("cancel_meeting", args, r#"{"negotiation_id": string}"#)?;
    let id = args.negotiation_id.trim().to_owned();
    if id.is_empty() {
        return Err("negotiation_id is empty; it is the meeting's UID in data/calendar.ics".into());
    }
    ctx.record(ToolRequest::CancelMeeting { negotiation_id: id })?;
    Ok("Recorded: the meeting is called off right after this message.".into())
}

#[derive(Deserialize)]
struct AnswerArgs {
    negotiation_id: Option<String>,
    accept: bool,
}

pub(super) async fn answer_meeting(ctx: &ToolContext, args: &Value) -> ToolResult {
    let args: AnswerArgs = parse_args(
        "answer_meeting",
        args,
        r#"{"negotiation_id"?: string, "accept": boolean}"#,
    )?;
    ctx.record(ToolRequest::AnswerMeeting {
        negotiation_id: args.negotiation_id.filter(|id| !id.trim().is_empty()),
        accept: args.accept,
    })?;
    Ok(if args.accept {
        "Recorded: accepted. The other twin is told right after this message.".into()
    } else {
        "Recorded: declined. The other twin is told right after this message.".into()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_whole_days_in_the_zone() {
        let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            instant("2026-11-23", tz, false).unwrap().to_rfc3339(),
            "2026-11-22T23:00:00+00:00"
        );
        assert_eq!(
            instant("2026-11-27", tz, true).unwrap().to_rfc3339(),
            "2026-11-27T23:00:00+00:00"
        );
        assert_eq!(
            instant("2026-11-23T10:00:00+01:00", tz, false)
                .unwrap()
                .to_rfc3339(),
            "2026-11-23T09:00:00+00:00"
        );
        assert!(instant("next week", tz, false).is_err());
    }
}
