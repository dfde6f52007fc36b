//! What the free/busy computation needs from a `VEVENT`: its UID and its timing.

use chrono::NaiveTime;

use super::props::{self, Length, When};
use super::recur;
use super::scan::{Node, ScanError};
use super::zone::Zones;

/// A `VEVENT`'s identity and timing.
#[derive(Debug, Clone)]
pub(super) struct EventInfo {
    /// `UID`, if it has one.
    pub(super) uid: Option<String>,
    /// `None` for an event without `DTSTART` (it takes no time).
    pub(super) timing: Option<Timing>,
}

/// When an event takes place.
#[derive(Debug, Clone)]
pub(super) struct Timing {
    /// `DTSTART`.
    pub(super) start: When,
    /// `DTEND` or `DURATION`.
    pub(super) end: End,
    /// `RRULE` values.
    pub(super) rules: Vec<String>,
    /// `RDATE` values (a PERIOD's start).
    pub(super) rdates: Vec<When>,
    /// `EXDATE` values.
    pub(super) exdates: Vec<When>,
    /// `RECURRENCE-ID`: this event replaces that instance of the recurring event with its UID.
    pub(super) recurrence_id: Option<When>,
    /// Neither `TRANSP:TRANSPARENT` nor `STATUS:CANCELLED`.
    pub(super) busy: bool,
}

/// How an event's end is given.
#[derive(Debug, Clone)]
pub(super) enum End {
    /// `DTEND`.
    At(When),
    /// `DURATION`.
    Length(Length),
    /// Neither: a DATE event lasts one day, a DATE-TIME event no time at all.
    Missing,
}

impl Timing {
    /// `DTSTART` as a wall-clock time (a DATE is its midnight).
    pub(super) fn local_start(&self) -> chrono::NaiveDateTime {
        match &self.start {
            When::Date(date) => date.and_time(NaiveTime::MIN),
            When::DateTime(naive, _) => *naive,
        }
    }
}

/// Reads a `VEVENT`. Only the properties that matter for identity and time are parsed; the
/// others are kept as written without being looked at.
pub(super) fn read_event(node: &Node, zones: &Zones) -> Result<EventInfo, ScanError> {
    let mut uid = None;
    let (mut start, mut dtend, mut duration, mut recurrence_id) = (None, None, None, None);
    let (mut rules, mut rdates, mut exdates) = (Vec::new(), Vec::new(), Vec::new());
    let mut busy = true;
    for line in node.props() {
        match line.name.as_str() {
            "UID" => uid = Some(props::property(line)?.value().to_owned()),
            "DTSTART" => start = Some(props::when(line, zones)?),
            "DTEND" => dtend = Some(props::when(line, zones)?),
            "DURATION" => {
                let prop = props::property(line)?;
                let length = props::duration(prop.value())
                    .filter(|l| !l.is_negative())
                    .ok_or_else(|| {
                        props::bad(
                            line,
                            format!("DURATION {:?} is not a duration", prop.value()),
                        )
                    })?;
                duration = Some(length);
            }
            "RECURRENCE-ID" => recurrence_id = Some(props::when(line, zones)?),
            "RRULE" => rules.push((props::property(line)?.value().to_owned(), line)),
            "RDATE" => rdates.extend(props::when_list(line, zones)?),
            "EXDATE" => exdates.extend(props::when_list(line, zones)?),
            "STATUS" | "TRANSP" => {
                let value = props::property(line)?.value().trim().to_ascii_uppercase();
                let free = match line.name.as_str() {
                    "STATUS" => value == "CANCELLED",
                    _ => value == "TRANSPARENT",
                };
                if free {
                    busy = false;
                }
            }
            _ => {}
        }
    }
    let Some(start) = start else {
        return Ok(EventInfo { uid, timing: None });
    };
    let end = match (dtend, duration) {
        (Some(at), _) => End::At(at),
        (None, Some(length)) => End::Length(length),
        (None, None) => End::Missing,
    };
    let timing = Timing {
        start,
        end,
        rules: Vec::new(),
        rdates,
        exdates,
        recurrence_id,
        busy,
    };
    let local_start = timing.local_start();
    let mut checked = Vec::new();
    for (rule, line) in rules {
        recur::check(local_start, &rule)
            .map_err(|problem| props::bad(line, format!("RRULE {rule:?}: {problem}")))?;
        checked.push(rule);
    }
    Ok(EventInfo {
        uid,
        timing: Some(Timing {
            rules: checked,
            ..timing
        }),
    })
}
