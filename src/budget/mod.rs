//! Token budgets: how many tokens a twin's model may use per UTC day and per UTC month.
//!
//! The service's `[llm]` configuration sets the defaults (`daily_token_budget`,
//! `monthly_token_budget`; none: no limit); an owner overrides them in the `[budget]` table of
//! `system/settings.toml` (by hand or with `!ai budget`). Usage is recorded per turn in the
//! database ([`crate::storage::Store::record_token_usage`]); this module is the arithmetic:
//! which periods a moment falls in, and whether a twin is over.

mod keeper;

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

pub use self::keeper::{BudgetKeeper, BudgetState};

/// One limit in `[budget]`: a number of tokens, or `"off"` (no limit, whatever the service's
/// default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// At most this many tokens.
    Tokens(u64),
    /// No limit.
    Off,
}

impl Limit {
    /// The tokens, `None` for no limit.
    pub fn tokens(self) -> Option<u64> {
        match self {
            Self::Tokens(n) => Some(n),
            Self::Off => None,
        }
    }

    /// Parses what an owner types: a number (`50000`, `50_000`, `50,000`, `50k`, `2m`) or
    /// `off`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().to_ascii_lowercase();
        if matches!(text.as_str(), "off" | "none" | "unlimited") {
            return Some(Self::Off);
        }
        let digits: String = text.chars().filter(|c| !matches!(c, '_' | ',')).collect();
        let (number, factor) = match digits.strip_suffix('k') {
            Some(n) => (n, 1_000),
            None => match digits.strip_suffix('m') {
                Some(n) => (n, 1_000_000),
                None => (digits.as_str(), 1),
            },
        };
        let n: u64 = number.parse().ok()?;
        n.checked_mul(factor).map(Self::Tokens)
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tokens(n) => f.write_str(&grouped(*n)),
            Self::Off => f.write_str("no limit"),
        }
    }
}

impl Serialize for Limit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Tokens(n) => serializer.serialize_u64(*n),
            Self::Off => serializer.serialize_str("off"),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Word(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(Self::Tokens(n)),
            Raw::Word(word) if word.eq_ignore_ascii_case("off") => Ok(Self::Off),
            Raw::Word(word) => Err(serde::de::Error::custom(format!(
                "a budget is a number of tokens or \"off\", not {word:?}"
            ))),
        }
    }
}

/// The `[budget]` table of `system/settings.toml`: the owner's own limits; a missing one is
/// the service's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSettings {
    /// Tokens per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<Limit>,
    /// Tokens per UTC month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<Limit>,
}

impl BudgetSettings {
    /// Whether neither limit is set.
    pub fn is_empty(&self) -> bool {
        self.daily.is_none() && self.monthly.is_none()
    }
}

/// The limits that apply to a twin: its owner's, else the service's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenBudget {
    /// Tokens per UTC day; `None`: no limit.
    pub daily: Option<u64>,
    /// Tokens per UTC month; `None`: no limit.
    pub monthly: Option<u64>,
}

impl TokenBudget {
    /// The owner's settings over the service's defaults.
    pub fn resolve(defaults: TokenBudget, owner: &BudgetSettings) -> Self {
        Self {
            daily: owner.daily.map_or(defaults.daily, Limit::tokens),
            monthly: owner.monthly.map_or(defaults.monthly, Limit::tokens),
        }
    }

    /// Whether any limit applies.
    pub fn is_limited(&self) -> bool {
        self.daily.is_some() || self.monthly.is_some()
    }
}

/// Which budget period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodKind {
    /// A UTC day.
    Day,
    /// A UTC month.
    Month,
}

impl PeriodKind {
    /// `daily` or `monthly`.
    pub fn adjective(self) -> &'static str {
        match self {
            Self::Day => "daily",
            Self::Month => "monthly",
        }
    }
}

/// A budget period: when it started, when the next one starts, and a key naming it
/// (`day:2026-12-06`, `month:2026-12`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// Day or month.
    pub kind: PeriodKind,
    /// Start, in ms since the epoch.
    pub start_ms: i64,
    /// Start of the next period, in ms since the epoch.
    pub end_ms: i64,
    /// A name of the period, the same for every moment in it.
    pub key: String,
}

impl Period {
    /// The day and the month `now_ms` (ms since the epoch) falls in, in UTC.
    pub fn at(now_ms: i64) -> (Period, Period) {
        let now = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default();
        let today = now.date_naive();
        let month = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today);
        let next_month = if today.month() == 12 {
            NaiveDate::from_ymd_opt(today.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(today.year(), today.month() + 1, 1)
        }
        .unwrap_or(month);
        let ms = |date: NaiveDate| {
            Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
                .timestamp_millis()
        };
        let day = Period {
            kind: PeriodKind::Day,
            start_ms: ms(today),
            end_ms: ms(today.succ_opt().unwrap_or(today)),
            key: format!("day:{}", today.format("%Y-%m-%d")),
        };
        let month = Period {
            kind: PeriodKind::Month,
            start_ms: ms(month),
            end_ms: ms(next_month),
            key: format!("month:{}", month.format("%Y-%m")),
        };
        (day, month)
    }

    /// When the next period starts, for people: `2026-12-07 00:00 UTC`.
    pub fn ends(&self) -> String {
        DateTime::<Utc>::from_timestamp_millis(self.end_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default()
    }
}

/// Tokens used over some time, as recorded per turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageTotals {
    /// All input tokens (cached ones included).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Of the input, tokens read from the provider's prompt cache.
    pub cache_read_tokens: u64,
    /// Of the input, tokens written to the provider's prompt cache.
    pub cache_write_tokens: u64,
    /// Model calls.
    pub model_calls: u64,
}

impl UsageTotals {
    /// Adds one model call and what the provider said it used.
    pub fn add_call(&mut self, usage: &crate::kernel::provider::Usage) {
        self.input_tokens = self.input_tokens.saturating_add(usage.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(usage.output_tokens);
        self.cache_read_tokens = self
            .cache_read_tokens
            .saturating_add(usage.cache_read_tokens);
        self.cache_write_tokens = self
            .cache_write_tokens
            .saturating_add(usage.cache_write_tokens);
        self.model_calls = self.model_calls.saturating_add(1);
    }

    /// Input and output: what a budget counts.
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// One line for people: `12,345 tokens (10,000 in, of which 8,000 (80 %) from the
    /// cache; 2,345 out) in 7 model calls`.
    pub fn describe(&self) -> String {
        let cached =
            match (self.cache_read_tokens.saturating_mul(100)).checked_div(self.input_tokens) {
                None => String::new(),
                Some(percent) => format!(
                    ", of which {} ({percent} %) from the prompt cache",
                    grouped(self.cache_read_tokens)
                ),
            };
        format!(
            "{} tokens ({} in{cached}; {} out) in {} model call(s)",
            grouped(self.total()),
            grouped(self.input_tokens),
            grouped(self.output_tokens),
            self.model_calls
        )
    }
}

/// A budget that is used up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// The period whose budget is used up.
    pub period: Period,
    /// The limit.
    pub limit: u64,
    /// Tokens used in the period.
    pub used: u64,
}

impl Exceeded {
    /// What the owner is told, once per period.
    pub fn notice(&self) -> String {
        let which = self.period.kind.adjective();
        format!(
            "🪫 I have used my {which} token budget ({} of {} tokens), so I won't ask the model \
             again until {}. Meetings with other twins go on without it. To raise the budget: \
             `!ai budget {which} <tokens>` (or `off`); `!ai usage` shows what I used.",
            grouped(self.used),
            grouped(self.limit),
            self.period.ends()
        )
    }
}

/// The first used-up budget of `budget`, given the tokens used today and this month; the
/// month first, since it lasts longer.
pub fn exceeded(
    budget: &TokenBudget,
    (day, month): &(Period, Period),
    today: &UsageTotals,
    this_month: &UsageTotals,
) -> Option<Exceeded> {
    [
        (month, budget.monthly, this_month),
        (day, budget.daily, today),
    ]
    .into_iter()
    .find_map(|(period, limit, used)| {
        let limit = limit?;
        (used.total() >= limit).then(|| Exceeded {
            period: period.clone(),
            limit,
            used: used.total(),
        })
    })
}

/// `1234567` as `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
