//! The owner's busy times, cached per calendar version: a flood of protocol events reads and
//! expands `data/calendar.ics` once per change of the file, not once per event.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::{
    calendar::{CALENDAR_FILE, Calendar, CalendarError},
    home::Home,
    protocol::Interval,
};

/// Most calendars cached (then the cache starts over).
const MAX_CACHED: usize = 1_000;
/// How long cached busy times serve before they are worked out again (the window moves on).
const MAX_AGE: TimeDelta = TimeDelta::minutes(10);

/// Which version of the file the busy times were worked out from: its length and time of
/// last change (`None`: the file does not exist).
type Version = Option<(u64, SystemTime)>;

#[derive(Debug)]
struct Cached {
    version: Version,
    tz: Tz,
    at: DateTime<Utc>,
    busy: Arc<Vec<Interval>>,
}

/// Busy times by home.
#[derive(Debug, Default)]
pub(super) struct BusyCache {
    cached: Mutex<HashMap<PathBuf, Cached>>,
}

impl BusyCache {
    /// The busy intervals of `home`'s calendar from `now` for `horizon`, in `tz`; worked out
    /// again only when the file changed, the zone changed or the cached ones are old. Touches
    /// the file system (run off the async threads).
    pub(super) fn busy(
        &self,
        home: &Home,
        now: DateTime<Utc>,
        horizon: TimeDelta,
        tz: Tz,
    ) -> Result<Arc<Vec<Interval>>, CalendarError> {
        let path = home.resolve(CALENDAR_FILE)?;
        let version: Version = std::fs::metadata(&path).ok().map(|meta| {
            (
                meta.len(),
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            )
        });
        let key = home.root().to_path_buf();
        if let Ok(cached) = self.cached.lock()
            && let Some(hit) = cached.get(&key)
            && hit.version == version
            && hit.tz == tz
            && now - hit.at < MAX_AGE
        {
            return Ok(hit.busy.clone());
        }
        let busy: Arc<Vec<Interval>> = Arc::new(
            Calendar::load(home)?
                .busy(now, now + horizon, tz)
                .into_iter()
                .filter_map(|(start, end)| Interval::new(start, end).ok())
                .collect(),
        );
        if let Ok(mut cached) = self.cached.lock() {
            if cached.len() >= MAX_CACHED {
                cached.clear();
            }
            cached.insert(
                key,
                Cached {
                    version,
                    tz,
                    at: now,
                    busy: busy.clone(),
                },
            );
        }
        Ok(busy)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const EVENT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n\
        UID:a\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20300102T100000Z\r\n\
        DTEND:20300102T110000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn busy_times_are_reused_until_the_calendar_changes() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open_or_create(&dir.path().join("h"), None, "@alice:x").unwrap();
        let cache = BusyCache::default();
        let now: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        let horizon = TimeDelta::days(92);
        let empty = cache.busy(&home, now, horizon, Tz::UTC).unwrap();
        assert!(empty.is_empty());
        home.write_atomic(CALENDAR_FILE, EVENT.as_bytes()).unwrap();
        let one = cache.busy(&home, now, horizon, Tz::UTC).unwrap();
        assert_eq!(one.len(), 1, "a new file is read");
        let again = cache.busy(&home, now, horizon, Tz::UTC).unwrap();
        assert!(
            Arc::ptr_eq(&one, &again),
            "the same version is not read again"
        );
        let later = cache
            .busy(&home, now + TimeDelta::minutes(11), horizon, Tz::UTC)
            .unwrap();
        assert!(
            !Arc::ptr_eq(&one, &later),
            "old busy times are worked out again"
        );
        home.write_atomic(CALENDAR_FILE, EVENT.replace("UID:a", "UID:bb").as_bytes())
            .unwrap();
        let changed = cache.busy(&home, now, horizon, Tz::UTC).unwrap();
        assert!(
            !Arc::ptr_eq(&later, &changed),
            "a changed file is read again"
        );
    }
}
