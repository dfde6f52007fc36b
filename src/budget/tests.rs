#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

/// 2026-12-31 23:59:59.999 UTC.
const NEW_YEARS_EVE: i64 = 1_798_761_599_999;

#[test]
fn periods_are_utc_days_and_months() {
    let (day, month) = Period::at(NEW_YEARS_EVE);
    assert_eq!(day.key, "day:2026-12-31");
    assert_eq!(month.key, "month:2026-12");
    assert_eq!(day.end_ms, NEW_YEARS_EVE + 1);
    assert_eq!(month.end_ms, NEW_YEARS_EVE + 1);
    assert_eq!(day.ends(), "2027-01-01 00:00 UTC");
    assert_eq!(day.start_ms, NEW_YEARS_EVE + 1 - 86_400_000);
    let (next_day, next_month) = Period::at(NEW_YEARS_EVE + 1);
    assert_eq!(next_day.key, "day:2027-01-01");
    assert_eq!(next_month.key, "month:2027-01");
    assert_eq!(next_month.start_ms, NEW_YEARS_EVE + 1);
    // February of a leap year ends on the 29th.
    let (_, february) = Period::at(1_709_210_096_000);
    assert_eq!(february.key, "month:2024-02");
    assert_eq!(february.ends(), "2024-03-01 00:00 UTC");
}

#[test]
fn limits_parse_as_owners_type_them() {
    assert_eq!(Limit::parse("50000"), Some(Limit::Tokens(50_000)));
    assert_eq!(Limit::parse("50,000"), Some(Limit::Tokens(50_000)));
    assert_eq!(Limit::parse("50_000"), Some(Limit::Tokens(50_000)));
    assert_eq!(Limit::parse("50k"), Some(Limit::Tokens(50_000)));
    assert_eq!(Limit::parse("2M"), Some(Limit::Tokens(2_000_000)));
    assert_eq!(Limit::parse("off"), Some(Limit::Off));
    assert_eq!(Limit::parse("0"), Some(Limit::Tokens(0)));
    for bad in [
        "",
        "-5",
        "lots",
        "1.5k",
        "99999999999999999999",
        "18446744073709551615k",
    ] {
        assert_eq!(Limit::parse(bad), None, "{bad}");
    }
}

#[test]
fn settings_take_numbers_or_off_and_refuse_anything_else() {
    let settings: BudgetSettings = toml::from_str("daily = 1000\nmonthly = \"off\"\n").unwrap();
    assert_eq!(settings.daily, Some(Limit::Tokens(1000)));
    assert_eq!(settings.monthly, Some(Limit::Off));
    assert_eq!(
        toml::to_string(&settings).unwrap(),
        "daily = 1000\nmonthly = \"off\"\n"
    );
    for bad in ["daily = \"lots\"", "daily = -1", "weekly = 5"] {
        assert!(toml::from_str::<BudgetSettings>(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_owners_limits_win_over_the_defaults() {
    let defaults = TokenBudget {
        daily: Some(100),
        monthly: Some(1000),
    };
    assert_eq!(
        TokenBudget::resolve(defaults, &BudgetSettings::default()),
        defaults
    );
    let owner = BudgetSettings {
        daily: Some(Limit::Off),
        monthly: Some(Limit::Tokens(5000)),
    };
    assert_eq!(
        TokenBudget::resolve(defaults, &owner),
        TokenBudget {
            daily: None,
            monthly: Some(5000)
        }
    );
}

#[test]
fn a_budget_is_used_up_at_its_limit_month_first() {
    let periods = Period::at(NEW_YEARS_EVE);
    let used = |n: u64| UsageTotals {
        input_tokens: n,
        ..UsageTotals::default()
    };
    let budget = TokenBudget {
        daily: Some(100),
        monthly: Some(1000),
    };
    assert_eq!(exceeded(&budget, &periods, &used(99), &used(500)), None);
    let day = exceeded(&budget, &periods, &used(100), &used(500)).unwrap();
    assert_eq!(day.period.kind, PeriodKind::Day);
    assert_eq!((day.used, day.limit), (100, 100));
    let month = exceeded(&budget, &periods, &used(100), &used(1000)).unwrap();
    assert_eq!(month.period.kind, PeriodKind::Month);
    assert!(
        month
            .notice()
            .contains("monthly token budget (1,000 of 1,000 tokens)")
            && month.notice().contains("2027-01-01 00:00 UTC"),
        "{}",
        month.notice()
    );
    assert_eq!(
        exceeded(
            &TokenBudget::default(),
            &periods,
            &used(u64::MAX),
            &used(u64::MAX)
        ),
        None,
        "no limit, never over"
    );
}

#[test]
fn usage_reads_with_cache_hits() {
    let usage = UsageTotals {
        input_tokens: 10_000,
        output_tokens: 2_345,
        cache_read_tokens: 8_000,
        cache_write_tokens: 0,
        model_calls: 7,
    };
    assert_eq!(
        usage.describe(),
        "12,345 tokens (10,000 in, of which 8,000 (80 %) from the prompt cache; 2,345 out) in 7 \
         model call(s)"
    );
    assert_eq!(grouped(0), "0");
    assert_eq!(grouped(999), "999");
    assert_eq!(grouped(1_000), "1,000");
    assert_eq!(grouped(1_234_567), "1,234,567");
}
