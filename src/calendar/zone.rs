//! Time zones of DATE-TIME values: UTC, floating (read in the caller's zone), an IANA zone
//! from chrono-tz, or a zone defined by a `VTIMEZONE` block of the file itself (Outlook's
//! `W. Europe Standard Time`, `Customized Time Zone`, ...).
//!
//! A `TZID` resolves to the IANA zone of that name when there is one (also after dropping
//! leading path segments, as in `/mozilla.org/20050126_1/Europe/Berlin`), else to the file's
//! `VTIMEZONE` with that `TZID`, else it is treated as floating. `VTIMEZONE` blocks named after
//! an IANA zone (Google's and Apple's) are therefore not read at all, only kept.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::props::{self, When};
use super::recur;
use super::scan::{Node, ScanError};

/// Last year for which `VTIMEZONE` transitions are computed; later times keep the last offset.
const LAST_TRANSITION_YEAR: i32 = 2200;
/// Most transitions computed per `STANDARD`/`DAYLIGHT` block.
const MAX_TRANSITIONS: usize = 1000;

/// The zone of a DATE-TIME value.
#[derive(Debug, Clone)]
pub(super) enum Zone {
    /// A trailing `Z`.
    Utc,
    /// No zone: read in the zone the caller passes.
    Floating,
    /// An IANA zone.
    Iana(Tz),
    /// A zone defined by a `VTIMEZONE` block.
    Custom(Arc<CustomZone>),
}

/// A `VTIMEZONE` turned into a table of transitions.
#[derive(Debug)]
pub(super) struct CustomZone {
    /// Offset (seconds east of UTC) before the first transition.
    initial: i32,
    /// (UTC instant, offset from then on), sorted by instant.
    transitions: Vec<(NaiveDateTime, i32)>,
}

impl CustomZone {
    fn offset_at(&self, utc: NaiveDateTime) -> i32 {
        let index = self.transitions.partition_point(|(at, _)| *at <= utc);
        match index.checked_sub(1).and_then(|i| self.transitions.get(i)) {
            Some((_, offset)) => *offset,
            None => self.initial,
        }
    }
}

impl Zone {
    /// Offset in seconds east of UTC at the UTC instant `utc` (`floating` for floating times).
    fn offset_at(&self, floating: Tz, utc: NaiveDateTime) -> i32 {
        match self {
            Zone::Utc => 0,
            Zone::Floating => iana_offset(floating, utc),
            Zone::Iana(tz) => iana_offset(*tz, utc),
            Zone::Custom(zone) => zone.offset_at(utc),
        }
    }

    /// The UTC instant of wall-clock time `local` in this zone.
    ///
    /// A time that occurs twice (when clocks go back) is the first of the two; a time skipped
    /// when clocks go forward is read with the offset before the gap (RFC 5545 3.3.5), so
    /// 02:30 on a night that jumps from 02:00 to 03:00 is 03:30. `None` only past chrono's range.
    pub(super) fn to_utc(&self, floating: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        let margin = TimeDelta::try_hours(36)?;
        let before = self.offset_at(floating, local.checked_sub_signed(margin)?);
        let after = self.offset_at(floating, local.checked_add_signed(margin)?);
        for offset in [before.max(after), before.min(after)] {
            let utc = local.checked_sub_signed(TimeDelta::try_seconds(offset.into())?)?;
            if self.offset_at(floating, utc) == offset {
                return Some(utc.and_utc());
            }
        }
        let utc = local.checked_sub_signed(TimeDelta::try_seconds(before.into())?)?;
        Some(utc.and_utc())
    }

    /// The wall-clock time in this zone at the UTC instant `utc`.
    pub(super) fn to_local(&self, floating: Tz, utc: NaiveDateTime) -> Option<NaiveDateTime> {
        let offset = self.offset_at(floating, utc);
        utc.checked_add_signed(TimeDelta::try_seconds(offset.into())?)
    }
}

fn iana_offset(tz: Tz, utc: NaiveDateTime) -> i32 {
    tz.offset_from_utc_datetime(&utc).fix().local_minus_utc()
}

/// The IANA zone a `TZID` names, if any.
pub(super) fn iana(tzid: &str) -> Option<Tz> {
    let tzid = tzid.trim();
    if let Ok(tz) = Tz::from_str(tzid) {
        return Some(tz);
    }
    tzid.match_indices('/')
        .find_map(|(i, _)| Tz::from_str(&tzid[i + 1..]).ok())
}

/// The `VTIMEZONE` definitions of one file.
#[derive(Debug, Default)]
pub(super) struct Zones {
    custom: HashMap<String, Arc<CustomZone>>,
}

impl Zones {
    /// Reads every `VTIMEZONE` directly inside `root` whose `TZID` is not an IANA name.
    pub(super) fn from_root(root: &Node) -> Result<Self, ScanError> {
        let mut custom = HashMap::new();
        for node in root.children().filter(|n| n.name == "VTIMEZONE") {
            let tzid = node.props().find(|l| l.name == "TZID");
            let tzid = tzid.map(props::property).transpose()?;
            if tzid.is_some_and(|t| iana(t.value()).is_some()) {
                continue; // the IANA zone of that name is used instead, see `resolve`
            }
            if let Some((tzid, zone)) = read_vtimezone(node)? {
                custom.insert(tzid, Arc::new(zone));
            }
        }
        Ok(Self { custom })
    }

    /// The zone a `TZID` parameter refers to (floating when unknown).
    pub(super) fn resolve(&self, tzid: &str) -> Zone {
        if let Some(tz) = iana(tzid) {
            return Zone::Iana(tz);
        }
        match self.custom.get(tzid.trim()) {
            Some(zone) => Zone::Custom(Arc::clone(zone)),
            None => {
                tracing::debug!(
                    tzid,
                    "unknown TZID in calendar; reading its times as floating"
                );
                Zone::Floating
            }
        }
    }
}

/// One `STANDARD` or `DAYLIGHT` block.
struct Observance {
    start: NaiveDateTime,
    offset_from: i32,
    offset_to: i32,
    rules: Vec<String>,
    rdates: Vec<NaiveDateTime>,
}

/// Reads a `VTIMEZONE`; `None` when it has no `TZID` or no observance (nothing to use).
fn read_vtimezone(node: &Node) -> Result<Option<(String, CustomZone)>, ScanError> {
    let Some(tzid) = node.props().find(|l| l.name == "TZID") else {
        return Ok(None);
    };
    let tzid = props::property(tzid)?.value().trim().to_owned();
    let mut transitions = Vec::new();
    for child in node.children() {
        if child.name != "STANDARD" && child.name != "DAYLIGHT" {
            continue;
        }
        let observance = read_observance(child)?;
        let from = TimeDelta::try_seconds(observance.offset_from.into()).unwrap_or_default();
        for onset in onsets(&observance, child)? {
            if let Some(utc) = onset.checked_sub_signed(from) {
                transitions.push((utc, observance.offset_from, observance.offset_to));
            }
        }
    }
    transitions.sort_by_key(|(at, _, _)| *at);
    let Some((_, initial, _)) = transitions.first().copied() else {
        return Ok(None);
    };
    let transitions = transitions
        .into_iter()
        .map(|(at, _, to)| (at, to))
        .collect();
    Ok(Some((
        tzid,
        CustomZone {
            initial,
            transitions,
        },
    )))
}

fn read_observance(node: &Node) -> Result<Observance, ScanError> {
    let no_zones = Zones::default();
    let (mut start, mut offset_from, mut offset_to) = (None, None, None);
    let (mut rules, mut rdates) = (Vec::new(), Vec::new());
    for line in node.props() {
        match line.name.as_str() {
            "DTSTART" => start = Some(wall_clock(props::when(line, &no_zones)?)),
            "TZOFFSETFROM" | "TZOFFSETTO" => {
                let value = props::property(line)?;
                let offset = props::utc_offset(value.value()).ok_or_else(|| {
                    props::bad(
                        line,
                        format!("{} {:?} is not a UTC offset", line.name, value.value()),
                    )
                })?;
                if line.name == "TZOFFSETFROM" {
                    offset_from = Some(offset);
                } else {
                    offset_to = Some(offset);
                }
            }
            "RRULE" => rules.push((props::property(line)?.value().to_owned(), line.number)),
            "RDATE" => rdates.extend(
                props::when_list(line, &no_zones)?
                    .into_iter()
                    .map(wall_clock),
            ),
            _ => {}
        }
    }
    let missing = |what: &str| ScanError {
        line: node.number,
        problem: format!("{} block of a VTIMEZONE has no {what}", node.name),
    };
    let start = start.ok_or_else(|| missing("DTSTART"))?;
    let offset_to = offset_to.ok_or_else(|| missing("TZOFFSETTO"))?;
    let offset_from = offset_from.unwrap_or(offset_to);
    for (rule, line) in &rules {
        // Checked here so a broken rule is reported with its line.
        recur::check(start, rule).map_err(|problem| ScanError {
            line: *line,
            problem: format!("RRULE {rule:?}: {problem}"),
        })?;
    }
    Ok(Observance {
        start,
        offset_from,
        offset_to,
        rules: rules.into_iter().map(|(rule, _)| rule).collect(),
        rdates,
    })
}

/// Local onset times of an observance up to [`LAST_TRANSITION_YEAR`].
fn onsets(observance: &Observance, node: &Node) -> Result<Vec<NaiveDateTime>, ScanError> {
    let end = NaiveDate::from_ymd_opt(LAST_TRANSITION_YEAR, 1, 1)
        .map(|d| d.and_time(chrono::NaiveTime::MIN))
        .unwrap_or(observance.start);
    let from = TimeDelta::try_seconds(observance.offset_from.into()).unwrap_or_default();
    // UNTIL in a VTIMEZONE is UTC; the onset times are in the offset before the change.
    let until_to_local = |utc: NaiveDateTime| utc.checked_add_signed(from);
    let mut all = vec![observance.start];
    for rule in &observance.rules {
        let expanded = recur::expand(
            observance.start,
            rule,
            &until_to_local,
            end,
            MAX_TRANSITIONS,
        )
        .map_err(|problem| ScanError {
            line: node.number,
            problem: format!("RRULE {rule:?}: {problem}"),
        })?;
        all.extend(expanded);
    }
    all.extend(observance.rdates.iter().copied());
    all.sort();
    all.dedup();
    Ok(all)
}

/// The wall-clock reading of a value (a DATE is its midnight).
fn wall_clock(when: When) -> NaiveDateTime {
    match when {
        When::Date(date) => date.and_time(chrono::NaiveTime::MIN),
        When::DateTime(naive, _) => naive,
    }
}
