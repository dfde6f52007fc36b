//! The calendar's error type.

use crate::home::HomeError;

/// An error reading, parsing or writing a calendar.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The text is not usable iCalendar: `line` is the 1-based physical line in `file` where the
    /// problem was found.
    #[error("{file} line {line}: {problem}")]
    Malformed {
        /// The file (or `"iCalendar text"` for [`super::Calendar::parse`]).
        file: String,
        /// 1-based line number in the file as written (before unfolding).
        line: usize,
        /// What is wrong, phrased for a person.
        problem: String,
    },
    /// The file is larger than [`super::MAX_CALENDAR_BYTES`].
    #[error("{file} is {size} bytes, over the {limit} byte limit for a calendar")]
    TooLarge {
        /// The file.
        file: String,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// Reading the file failed.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The home refused the path or the write.
    #[error(transparent)]
    Home(#[from] HomeError),
}

impl CalendarError {
    /// The same error, naming `file` instead of whatever it named before.
    pub(super) fn in_file(self, file: &str) -> Self {
        match self {
            Self::Malformed { line, problem, .. } => Self::Malformed {
                file: file.to_owned(),
                line,
                problem,
            },
            other => other,
        }
    }
}
