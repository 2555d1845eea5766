use super::*;
use chrono::{Utc, Weekday};
use proptest::prelude::*;

const MINUTE: u64 = 60_000;
const DAY: u64 = 24 * 60 * MINUTE;

fn cron(expr: &str) -> Cron {
    Cron::parse(expr).unwrap()
}

fn error(expr: &str) -> String {
    Cron::parse(expr).unwrap_err().to_string()
}

fn zone(name: &str) -> Tz {
    parse_zone(name).unwrap()
}

/// Milliseconds of a UTC wall-clock minute.
fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> u64 {
    let at = NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap();
    u64::try_from(at.and_utc().timestamp_millis()).unwrap()
}

/// The first `n` fire instants after `after`.
fn fires(expr: &str, tz: Tz, mut after: u64, n: usize) -> Vec<u64> {
    let cron = cron(expr);
    (0..n)
        .map(|_| {
            after = cron.next_after(after, tz).unwrap();
            after
        })
        .collect()
}

#[test]
fn parse_errors_name_what_was_wrong() {
    let cases = [
        ("* * *", "cron expression \"* * *\" has 3 fields; expected 5 (minute hour day-of-month month day-of-week) or a macro such as @daily"),
        ("", "cron expression \"\" has 0 fields; expected 5 (minute hour day-of-month month day-of-week) or a macro such as @daily"),
        ("61 * * * *", "cron minute field \"61\": 61 is out of range 0-59"),
        ("0 24 * * *", "cron hour field \"24\": 24 is out of range 0-23"),
        ("0 0 0 * *", "cron day-of-month field \"0\": 0 is out of range 1-31"),
        ("0 0 * 1,13 *", "cron month field \"1,13\": 13 is out of range 1-12"),
        ("0 0 * * 8", "cron day-of-week field \"8\": 8 is out of range 0-7"),
        ("99999999999 * * * *", "cron minute field \"99999999999\": 99999999999 is out of range 0-59"),
        ("* * * * MON-FOO", "cron day-of-week field \"MON-FOO\": FOO is not a day name or number"),
        ("* * * FOO *", "cron month field \"FOO\": FOO is not a month name or number"),
        ("x * * * *", "cron minute field \"x\": x is not a number"),
        ("+5 * * * *", "cron minute field \"+5\": +5 is not a number"),
        ("*/0 * * * *", "cron step 0 in minute field \"*/0\": a step must be at least 1"),
        ("*/x * * * *", "cron minute field \"*/x\": x is not a number"),
        ("5-2 * * * *", "cron minute field \"5-2\": range 5-2 runs backwards; put the smaller bound first"),
        ("0 0 * FRI-MON *", "cron month field \"FRI-MON\": FRI is not a month name or number"),
        ("5- * * * *", "cron minute field \"5-\": 5- is not a number"),
        ("*/ * * * *", "cron minute field \"*/\": */ is not a number"),
        ("0 0 * * -MON", "cron day-of-week field \"-MON\": -MON is not a day name or number"),
        ("1,,2 * * * *", "cron minute field \"1,,2\" has an empty item; remove the extra comma"),
        ("1, * * * *", "cron minute field \"1,\" has an empty item; remove the extra comma"),
        ("0 0 30 2 *", "cron expression \"0 0 30 2 *\" never fires"),
        ("0 0 31 4,6,9,11 *", "cron expression \"0 0 31 4,6,9,11 *\" never fires"),
        ("@often", "unknown cron macro \"@often\"; expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"),
    ];
    for (expr, message) in cases {
        assert_eq!(error(expr), message, "{expr}");
    }
    let long = format!("0 0 * * *{}", " ".repeat(291));
    assert_eq!(
        error(&long),
        "cron expression is 300 bytes long; at most 256 are allowed"
    );
    assert_eq!(
        parse_zone("Mars/Olympus").unwrap_err().to_string(),
        "unknown time zone \"Mars/Olympus\""
    );
}

#[test]
fn impossible_days_are_fine_when_weekdays_or_another_month_can_fire() {
    assert!(Cron::parse("0 0 29 2 *").is_ok());
    assert!(Cron::parse("0 0 31 2,3 *").is_ok());
    // Both day fields restricted: Mondays in February still fire.
    assert!(Cron::parse("0 0 30 2 MON").is_ok());
}

#[test]
fn every_five_minutes_from_the_epoch() {
    assert_eq!(fires("*/5 * * * *", Tz::UTC, 0, 2), [300_000, 600_000]);
}

#[test]
fn next_after_is_strictly_after() {
    let every5 = cron("*/5 * * * *");
    assert_eq!(every5.next_after(300_000, Tz::UTC), Some(600_000));
    assert_eq!(every5.next_after(299_999, Tz::UTC), Some(300_000));
    assert_eq!(every5.next_after(300_001, Tz::UTC), Some(600_000));
}

#[test]
fn weekdays_skip_the_weekend() {
    let friday = utc(2026, 1, 2, 9, 0);
    assert_eq!(
        NaiveDate::from_ymd_opt(2026, 1, 2).unwrap().weekday(),
        Weekday::Fri
    );
    let got = fires("0 9 * * MON-FRI", Tz::UTC, friday, 2);
    assert_eq!(got, [utc(2026, 1, 5, 9, 0), utc(2026, 1, 6, 9, 0)]);
}

#[test]
fn restricted_day_fields_match_either_one() {
    // 2026-02-01 is a Sunday; Mondays are the 5th, 12th, ... and Feb 2nd.
    let got = fires("0 0 1 * MON", Tz::UTC, utc(2026, 1, 1, 0, 0), 6);
    let days = [(1, 5), (1, 12), (1, 19), (1, 26), (2, 1), (2, 2)];
    assert_eq!(got, days.map(|(m, d)| utc(2026, m, d, 0, 0)));
    // A day field starting with `*` makes both apply: odd days that are Mondays.
    let got = fires("0 0 */2 * MON", Tz::UTC, utc(2026, 1, 1, 0, 0), 4);
    let days = [(1, 5), (1, 19), (2, 9), (2, 23)];
    assert_eq!(got, days.map(|(m, d)| utc(2026, m, d, 0, 0)));
}

#[test]
fn leap_day_skips_2100() {
    let leap = cron("0 0 29 2 *");
    assert_eq!(
        leap.next_after(utc(2097, 3, 1, 0, 0), Tz::UTC),
        Some(utc(2104, 2, 29, 0, 0))
    );
    assert_eq!(
        leap.next_after(utc(2096, 1, 1, 0, 0), Tz::UTC),
        Some(utc(2096, 2, 29, 0, 0))
    );
}

#[test]
fn macros_equal_their_fields() {
    assert_eq!(cron("@hourly"), cron("0 * * * *"));
    assert_eq!(cron("@daily"), cron("0 0 * * *"));
    assert_eq!(cron("@midnight"), cron("0 0 * * *"));
    assert_eq!(cron("@weekly"), cron("0 0 * * 0"));
    assert_eq!(cron("@monthly"), cron("0 0 1 * *"));
    assert_eq!(cron("@yearly"), cron("0 0 1 1 *"));
    assert_eq!(cron(" @Annually "), cron("0 0 1 1 *"));
}

#[test]
fn spring_forward_fires_at_the_end_of_the_gap() {
    // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00 UTC.
    let berlin = zone("Europe/Berlin");
    let got = fires("30 2 * * *", berlin, utc(2026, 3, 28, 0, 0), 3);
    assert_eq!(
        got,
        [
            utc(2026, 3, 28, 1, 30),
            utc(2026, 3, 29, 1, 0),
            utc(2026, 3, 30, 0, 30)
        ]
    );
    // 02:00, 02:30 and 03:00 local are all 01:00 UTC: one fire.
    let got = fires("*/30 * * * *", berlin, utc(2026, 3, 29, 0, 0), 4);
    let want = [(0, 30), (1, 0), (1, 30), (2, 0)];
    assert_eq!(got, want.map(|(h, m)| utc(2026, 3, 29, h, m)));
}

#[test]
fn fall_back_fires_once_at_the_earlier_instant() {
    // Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00 UTC.
    let berlin = zone("Europe/Berlin");
    let got = fires("30 2 * * *", berlin, utc(2026, 10, 24, 12, 0), 2);
    assert_eq!(got, [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]);
    let got = fires("*/30 * * * *", berlin, utc(2026, 10, 24, 23, 0), 6);
    let want = [
        utc(2026, 10, 24, 23, 30), // 01:30 CEST
        utc(2026, 10, 25, 0, 0),   // 02:00 CEST
        utc(2026, 10, 25, 0, 30),  // 02:30 CEST; 02:00 and 02:30 CET do not fire
        utc(2026, 10, 25, 2, 0),   // 03:00 CET
        utc(2026, 10, 25, 2, 30),
        utc(2026, 10, 25, 3, 0),
    ];
    assert_eq!(got, want);
    // From inside the repeated hour, the next fire is after it.
    let inside = utc(2026, 10, 25, 1, 15);
    assert_eq!(
        cron("*/30 * * * *").next_after(inside, berlin),
        Some(utc(2026, 10, 25, 2, 0))
    );
}

#[test]
fn a_gap_ending_between_minutes_fires_at_its_exact_end() {
    // Monrovia moved from -0:44:30 to UTC at 1972-01-07 00:44:30 UTC, so local
    // 00:00 to 00:44:29 on that day never happened.
    let monrovia = zone("Africa/Monrovia");
    let gap_end = utc(1972, 1, 7, 0, 44) + 30_000;
    let before = utc(1972, 1, 6, 12, 0);
    assert_eq!(
        cron("10 0 * * *").next_after(before, monrovia),
        Some(gap_end)
    );
    assert_eq!(
        cron("45 0 * * *").next_after(before, monrovia),
        Some(utc(1972, 1, 7, 0, 45))
    );
}

#[test]
fn steps_ranges_and_lists() {
    assert_eq!(
        cron("0-10/5,30 * * * *").minutes,
        1 << 0 | 1 << 5 | 1 << 10 | 1 << 30
    );
    assert_eq!(
        cron("50/3 * * * *").minutes,
        1 << 50 | 1 << 53 | 1 << 56 | 1 << 59
    );
    assert_eq!(
        cron("0 */6 * * *").hours,
        1 << 0 | 1 << 6 | 1 << 12 | 1 << 18
    );
    assert_eq!(
        cron("0 0 1-31/10 * *").days,
        1 << 1 | 1 << 11 | 1 << 21 | 1 << 31
    );
    assert_eq!(cron("*/99999999999 * * * *").minutes, 1);
    assert_eq!(cron("0 0 * * *").days, u32::MAX - 1);
    assert_eq!(cron("0 0 * * *").months, 0x1ffe);
}

#[test]
fn names_are_case_insensitive_and_7_is_sunday() {
    assert_eq!(cron("0 0 1 jan,Jul,DEC *"), cron("0 0 1 1,7,12 *"));
    assert_eq!(cron("0 0 * * sun-Sat").weekdays, 0x7f);
    assert_eq!(cron("0 0 * * mOn/2"), cron("0 0 * * 1,3,5,7"));
    assert_eq!(cron("0 0 * * 7"), cron("0 0 * * 0"));
    assert_eq!(cron("0 0 * * 7").weekdays, 1);
    assert_eq!(cron("0 0 * * 5-7").weekdays, 1 | 1 << 5 | 1 << 6);
}

#[test]
fn zones_are_iana_names() {
    assert_eq!(parse_zone("UTC"), Ok(Tz::UTC));
    assert_eq!(parse_zone("Europe/Berlin"), Ok(Tz::Europe__Berlin));
    let unknown = CronError::UnknownZone {
        name: "europe/berlin".into(),
    };
    assert_eq!(parse_zone("europe/berlin"), Err(unknown));
}

#[test]
fn a_month_of_five_minute_fires() {
    let every5 = cron("*/5 * * * *");
    let start = utc(2026, 1, 1, 0, 0);
    let (mut at, mut count) = (start, 0);
    while let Some(next) = every5.next_after(at, zone("America/New_York")) {
        if next > start + 30 * DAY {
            break;
        }
        assert_eq!(next, at + 5 * MINUTE);
        (at, count) = (next, count + 1);
    }
    assert_eq!(count, 8640);
}

#[test]
fn out_of_range_instants_give_none() {
    let every = cron("* * * * *");
    let last = u64::try_from(DateTime::<Utc>::MAX_UTC.timestamp_millis()).unwrap();
    for after in [u64::MAX, u64::MAX - 1, 1 << 63, last + 1, last] {
        assert_eq!(
            every.next_after(after, zone("Europe/Berlin")),
            None,
            "{after}"
        );
    }
    // `*/7` makes both day fields apply: Feb 29 on a Sunday is 2032, then 2060.
    let rare = cron("0 0 29 2 */7");
    assert_eq!(
        rare.next_after(utc(2026, 1, 1, 0, 0), Tz::UTC),
        Some(utc(2032, 2, 29, 0, 0))
    );
    assert_eq!(rare.next_after(utc(2032, 3, 1, 0, 0), Tz::UTC), None);
}

/// Whether `local` matches, worked out from the bitsets without the search code.
fn matches(cron: &Cron, local: NaiveDateTime) -> bool {
    let bit = |bits: u64, v: u32| bits & 1 << v != 0;
    let day = bit(cron.days.into(), local.day());
    let weekday = bit(cron.weekdays.into(), local.weekday().num_days_from_sunday());
    let day_ok = match cron.day_star || cron.weekday_star {
        true => day && weekday,
        false => day || weekday,
    };
    day_ok
        && bit(cron.minutes, local.minute())
        && bit(cron.hours.into(), local.hour())
        && bit(cron.months.into(), local.month())
}

/// Whether the schedule fires at minute instant `t`: its local minute matches and this
/// is that minute's earlier instant, or `t` ends a gap holding a matching minute.
fn fires_at(cron: &Cron, tz: Tz, t: u64) -> bool {
    let at = DateTime::from_timestamp_millis(t as i64)
        .unwrap()
        .with_timezone(&tz);
    let local = at.naive_local();
    if matches(cron, local) && tz.from_local_datetime(&local).earliest() == Some(at) {
        return true;
    }
    let before = (at - TimeDelta::minutes(1)).naive_local();
    let mut gap = before + TimeDelta::minutes(1);
    while gap < local {
        if matches(cron, gap) {
            return true;
        }
        gap += TimeDelta::minutes(1);
    }
    false
}

fn item(max: u32) -> impl Strategy<Value = String> {
    (0..=max, 0..=max, 1..=max.max(2), 0..6).prop_map(|(a, b, step, shape)| {
        let (lo, hi) = (a.min(b), a.max(b));
        match shape {
            0 => "*".to_owned(),
            1 => format!("{a}"),
            2 => format!("{lo}-{hi}"),
            3 => format!("*/{step}"),
            4 => format!("{a}/{step}"),
            _ => format!("{lo}-{hi}/{step}"),
        }
    })
}

fn field(min: u32, max: u32) -> impl Strategy<Value = String> {
    prop::collection::vec(item(max - min), 1..3).prop_map(move |items| {
        // Shift numbers into `min..=max` (`*` needs no shift).
        let shift = |s: &str| -> String {
            let parts = s.split('/').collect::<Vec<_>>();
            let bounds = parts[0].split('-').map(|n| match n.parse::<u32>() {
                Ok(n) => (n + min).to_string(),
                Err(_) => n.to_owned(),
            });
            let range = bounds.collect::<Vec<_>>().join("-");
            parts
                .get(1)
                .map_or(range.clone(), |step| format!("{range}/{step}"))
        };
        items.iter().map(|i| shift(i)).collect::<Vec<_>>().join(",")
    })
}

fn expression() -> impl Strategy<Value = String> {
    let fields = (
        field(0, 59),
        field(0, 23),
        field(1, 31),
        field(1, 12),
        field(0, 7),
    );
    fields.prop_map(|(mi, h, d, mo, w)| format!("{mi} {h}  {d}\t{mo} {w}"))
}

/// The instants in `year` at which `tz` changes its offset (to the minute; at most
/// one a day).
fn transitions(tz: Tz, year: i32) -> Vec<u64> {
    let offset = |t: u64| {
        let at = DateTime::from_timestamp_millis(t as i64)
            .unwrap()
            .naive_utc();
        tz.offset_from_utc_datetime(&at).fix()
    };
    let mut found = vec![];
    let mut day = utc(year, 1, 1, 0, 0);
    while day < utc(year + 1, 1, 1, 0, 0) {
        let (mut before, mut after) = (day, day + DAY);
        if offset(before) != offset(after) {
            while after - before > MINUTE {
                let mid = before + (after - before) / 2 / MINUTE * MINUTE;
                if offset(mid) == offset(before) {
                    before = mid;
                } else {
                    after = mid;
                }
            }
            found.push(after);
        }
        day += DAY;
    }
    found
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn next_after_is_the_first_fire_after(
        expr in expression(),
        tz in prop::sample::select(vec![Tz::UTC, Tz::Europe__Berlin, Tz::Australia__Lord_Howe]),
        anywhere in 0..utc(2200, 1, 1, 0, 0),
        // One time in two, up to 2 hours before or 1 hour after a clock change.
        (near, year, pick, delta) in
            (any::<bool>(), 1970..2200, any::<prop::sample::Index>(), 0..3 * 3_600_000u64),
    ) {
        let parsed = Cron::parse(&expr);
        prop_assume!(parsed.is_ok());
        let cron = parsed.unwrap();
        let changes = if near { transitions(tz, year) } else { vec![] };
        let after = match changes.is_empty() {
            true => anywhere,
            false => changes[pick.index(changes.len())] + delta - 2 * 3_600_000,
        };
        let got = cron.next_after(after, tz);
        if let Some(got) = got {
            prop_assert!(got > after);
            prop_assert_eq!(got % MINUTE, 0);
            prop_assert!(fires_at(&cron, tz, got), "{} does not fire at {}", expr, got);
        }
        let window = (after / MINUTE + 1) * MINUTE..=after + 3 * DAY;
        let first = window.step_by(60_000).find(|&t| fires_at(&cron, tz, t));
        match (first, got) {
            (Some(first), _) => prop_assert_eq!(Some(first), got),
            (None, Some(got)) => prop_assert!(got > after + 3 * DAY),
            (None, None) => {}
        }
    }
}

/// Samoa skipped Friday 2011-12-30 whole: a fire due at its midnight waits out the
/// 24-hour gap and fires when the day after begins.
#[test]
fn a_skipped_day_fires_at_its_end() {
    let apia = zone("Pacific/Apia");
    let got = fires("0 0 30 12 *", apia, utc(2011, 12, 28, 0, 0), 1);
    // Local 2011-12-31 00:00 (+14:00).
    assert_eq!(got, [utc(2011, 12, 30, 10, 0)]);
}

/// The length bound counts the expression as given, spaces included, and takes an
/// expression of exactly that length.
#[test]
fn an_expression_of_the_longest_length_is_taken() {
    let longest = format!("{:<256}", "* * * * *");
    assert_eq!(Cron::parse(&longest), Ok(cron("* * * * *")));
    assert_eq!(
        Cron::parse(&format!("{longest} ")),
        Err(CronError::TooLong { len: 257 })
    );
}
