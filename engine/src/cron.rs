//! Fire times of five-field cron schedules in an IANA time zone.
//!
//! An expression names local wall-clock minutes in its zone (`minute hour
//! day-of-month month day-of-week`, or a macro such as `@daily`). When both day
//! fields are restricted (neither starts with `*`), a day matches if either one does;
//! otherwise both must (Vixie cron).
//!
//! Daylight-saving transitions, so that a schedule never fires twice for one local
//! minute nor skips a day:
//! - a local minute that does not exist (spring-forward gap) fires at the first
//!   instant after the gap; several such minutes collapse into that one instant,
//!   which fires once because [`Cron::next_after`] is strictly increasing;
//! - an ambiguous local minute (fall-back) fires once, at its earlier instant: the
//!   repeated hour does not fire again.
//!
//! Otherwise a fire instant is the exact UTC instant at which its local minute starts.
//! The zone table is compiled in, so results never depend on the host.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike};
use chrono_tz::Tz;

#[cfg(test)]
#[path = "cron_tests.rs"]
mod tests;

/// Longest accepted expression; a schedule spec is small, and this bounds error texts.
const MAX_LEN: usize = 256;
/// How far ahead [`Cron::next_after`] looks; covers a Feb 29 across a skipped leap year.
const HORIZON_DAYS: u64 = 8 * 366;
/// Longest run of non-existent local minutes searched for a gap's end (Samoa skipped
/// a whole day in 2011).
const MAX_GAP_MINUTES: u32 = 3 * 24 * 60;

/// Why a cron expression or time zone was refused. Each message names the offending
/// text; a field's variants carry its name (`minute`, `hour`, `day-of-month`,
/// `month`, `day-of-week`) as `field` and the field as given as `text`.
#[allow(missing_docs)] // the fields are the values the messages print
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// The expression is longer than 256 bytes.
    #[error("cron expression is {len} bytes long; at most 256 are allowed")]
    TooLong { len: usize },
    /// Neither five fields nor a macro.
    #[error(
        "cron expression {expr:?} has {count} fields; expected 5 (minute hour \
         day-of-month month day-of-week) or a macro such as @daily"
    )]
    FieldCount { expr: String, count: usize },
    /// An `@` word that is not a known macro.
    #[error(
        "unknown cron macro {expr:?}; expected @yearly, @annually, @monthly, @weekly, \
         @daily, @midnight or @hourly"
    )]
    UnknownMacro { expr: String },
    /// A comma list with an empty entry (`1,,2`, `1,`).
    #[error("cron {field} field {text:?} has an empty item; remove the extra comma")]
    EmptyItem { field: &'static str, text: String },
    /// A value, bound or step that is neither a number nor a name the field accepts
    /// (`expected` says which).
    #[error("cron {field} field {text:?}: {value} is not a {expected}")]
    BadValue {
        field: &'static str,
        text: String,
        value: String,
        expected: &'static str,
    },
    /// A number outside the field's range `min`-`max`.
    #[error("cron {field} field {text:?}: {value} is out of range {min}-{max}")]
    OutOfRange {
        field: &'static str,
        text: String,
        value: String,
        min: u32,
        max: u32,
    },
    /// A range whose start is after its end.
    #[error(
        "cron {field} field {text:?}: range {start}-{end} runs backwards; put the \
         smaller bound first"
    )]
    Backwards {
        field: &'static str,
        text: String,
        start: u32,
        end: u32,
    },
    /// A step of zero, which would never advance.
    #[error("cron step 0 in {field} field {text:?}: a step must be at least 1")]
    ZeroStep { field: &'static str, text: String },
    /// No month has any of the listed days (`0 0 30 2 *`).
    #[error("cron expression {expr:?} never fires")]
    NeverFires { expr: String },
    /// Not an IANA zone name.
    #[error("unknown time zone {name:?}")]
    UnknownZone { name: String },
}

/// A parsed five-field cron expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cron {
    /// Bit `m` set: fires at minute `m` (0..60).
    minutes: u64,
    /// Bit `h` set: fires in hour `h` (0..24).
    hours: u32,
    /// Bit `d` set: day of month `d` matches (1..=31).
    days: u32,
    /// Bit `m` set: month `m` matches (1..=12).
    months: u16,
    /// Bit `w` set: weekday `w` matches (0..=6, Sunday = 0).
    weekdays: u8,
    /// The day-of-month field starts with `*`.
    day_star: bool,
    /// The day-of-week field starts with `*`.
    weekday_star: bool,
}

/// One field's bounds and the names it accepts (`names[i]` stands for `min + i`).
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    expected: &'static str,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const FIELDS: [Field; 5] = [
    Field::new("minute", 0, 59, &[], "number"),
    Field::new("hour", 0, 23, &[], "number"),
    Field::new("day-of-month", 1, 31, &[], "number"),
    Field::new("month", 1, 12, &MONTHS, "month name or number"),
    // 7 is Sunday too; folded onto 0 after parsing.
    Field::new("day-of-week", 0, 7, &DAYS, "day name or number"),
];

impl Field {
    const fn new(
        name: &'static str,
        min: u32,
        max: u32,
        names: &'static [&'static str],
        expected: &'static str,
    ) -> Field {
        Field {
            name,
            min,
            max,
            names,
            expected,
        }
    }
}

impl Cron {
    /// Parses a five-field expression or a macro; refuses one that can never fire.
    pub(crate) fn parse(expr: &str) -> Result<Cron, CronError> {
        if expr.len() > MAX_LEN {
            return Err(CronError::TooLong { len: expr.len() });
        }
        let expanded = expand_macro(expr.trim())?;
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = parts[..] else {
            let count = parts.len();
            return Err(CronError::FieldCount {
                expr: expr.to_owned(),
                count,
            });
        };
        let bits = |i: usize, text: &str| parse_field(&FIELDS[i], text);
        let weekdays = bits(4, weekday)?;
        let cron = Cron {
            minutes: bits(0, minute)?,
            hours: narrow(bits(1, hour)?),
            days: narrow(bits(2, day)?),
            months: narrow(bits(3, month)?),
            weekdays: narrow((weekdays | weekdays >> 7) & 0x7f),
            day_star: day.starts_with('*'),
            weekday_star: weekday.starts_with('*'),
        };
        if cron.can_fire() {
            Ok(cron)
        } else {
            Err(CronError::NeverFires {
                expr: expr.to_owned(),
            })
        }
    }

    /// The first fire instant strictly after `after` (ms since the Unix epoch), in
    /// zone `tz`; None if none within 8 years (or beyond the calendar's range).
    pub(crate) fn next_after(&self, after: u64, tz: Tz) -> Option<u64> {
        let start = DateTime::from_timestamp_millis(i64::try_from(after).ok()?)?.naive_utc();
        // Checked: near the end of the calendar the local time may not be representable.
        let local = start.checked_add_offset(tz.offset_from_utc_datetime(&start).fix())?;
        let mut from = local.with_second(0)?.with_nanosecond(0)?;
        let limit = local
            .date()
            .checked_add_days(chrono::Days::new(HORIZON_DAYS));
        let limit = limit.unwrap_or(NaiveDate::MAX);
        loop {
            let candidate = self.next_local(from, limit)?;
            debug_assert!(candidate >= from, "{candidate} is before {from}");
            let instant = resolve(candidate, tz)?;
            // Minutes of a repeated hour resolve to their earlier instant, which may
            // lie at or before `after`; they do not fire again.
            if instant > after {
                return Some(instant);
            }
            from = candidate.checked_add_signed(TimeDelta::minutes(1))?;
        }
    }

    /// The first matching local minute at or after `from`, on or before `limit`.
    fn next_local(&self, from: NaiveDateTime, limit: NaiveDate) -> Option<NaiveDateTime> {
        let mut date = from.date();
        let (mut hour, mut minute) = (from.hour(), from.minute());
        while date <= limit {
            if !has(u64::from(self.months), date.month()) {
                let next = next_month(date)?;
                // The search ends because every step moves the date on.
                debug_assert!(next > date, "{next} does not follow {date}");
                date = next;
            } else if !self.day_matches(date) {
                date = date.succ_opt()?;
            } else if let Some((h, m)) = self.time_at_or_after(hour, minute) {
                return date.and_hms_opt(h, m, 0);
            } else {
                date = date.succ_opt()?;
            }
            (hour, minute) = (0, 0);
        }
        None
    }

    /// The first matching (hour, minute) at or after `hour:minute` within a day.
    fn time_at_or_after(&self, hour: u32, minute: u32) -> Option<(u32, u32)> {
        let later_minutes = self.minutes >> minute << minute;
        if has(u64::from(self.hours), hour) && later_minutes != 0 {
            let at = later_minutes.trailing_zeros();
            debug_assert!(at >= minute, "minute {at} is before {minute}");
            return Some((hour, at));
        }
        let later_hours = self.hours.checked_shr(hour + 1)?.checked_shl(hour + 1)?;
        let found = (later_hours != 0)
            .then(|| (later_hours.trailing_zeros(), self.minutes.trailing_zeros()));
        debug_assert!(found.is_none_or(|t| t > (hour, minute)), "{found:?}");
        found
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let day = has(u64::from(self.days), date.day());
        let weekday = has(
            u64::from(self.weekdays),
            date.weekday().num_days_from_sunday(),
        );
        if self.day_star || self.weekday_star {
            day && weekday
        } else {
            day || weekday
        }
    }

    /// Some month has one of the listed days (any weekday recurs in every month).
    fn can_fire(&self) -> bool {
        let month_lengths = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let day_possible = (1..=12u32).zip(month_lengths).any(|(month, len)| {
            has(u64::from(self.months), month) && self.days & u32::MAX >> (31 - len) & !1 != 0
        });
        day_possible || !(self.day_star || self.weekday_star)
    }
}

/// Parses an IANA zone name such as `Europe/Berlin` or `UTC` (case-sensitive).
pub(crate) fn parse_zone(name: &str) -> Result<Tz, CronError> {
    name.parse().map_err(|_| CronError::UnknownZone {
        name: name.to_owned(),
    })
}

fn expand_macro(expr: &str) -> Result<&str, CronError> {
    if !expr.starts_with('@') {
        return Ok(expr);
    }
    Ok(match expr.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => {
            return Err(CronError::UnknownMacro {
                expr: expr.to_owned(),
            })
        }
    })
}

/// The set of values one field lists, as bits `min..=max`.
fn parse_field(field: &Field, text: &str) -> Result<u64, CronError> {
    let mut bits = 0;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(CronError::EmptyItem {
                field: field.name,
                text: text.to_owned(),
            });
        }
        bits |= parse_item(field, text, item)?;
    }
    Ok(bits)
}

/// One item: `*`, `N`, `N-M`, `*/S`, `N/S` (N to the field's end) or `N-M/S`.
fn parse_item<'a>(field: &Field, text: &str, item: &'a str) -> Result<u64, CronError> {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(step)),
        None => (item, None),
    };
    // A missing bound or step (`5-`, `/5`, `*/`) is reported as the whole item.
    let shown = |token: &'a str| if token.is_empty() { item } else { token };
    let value = |token: &'a str| parse_value(field, text, shown(token));
    let (start, end) = match (range, range.split_once('-')) {
        ("*", _) => (field.min, field.max),
        (_, Some((start, end))) => (value(start)?, value(end)?),
        (_, None) => value(range).map(|v| (v, if step.is_some() { field.max } else { v }))?,
    };
    if start > end {
        let text = text.to_owned();
        return Err(CronError::Backwards {
            field: field.name,
            text,
            start,
            end,
        });
    }
    let step = match step {
        None => 1,
        // Digits only: a number too large for u32 is just a step past the field's end.
        Some(step) if !step.is_empty() && step.bytes().all(|b| b.is_ascii_digit()) => {
            step.parse::<u32>().unwrap_or(u32::MAX)
        }
        Some(step) => {
            let (text, value) = (text.to_owned(), shown(step).to_owned());
            let expected = "number";
            return Err(CronError::BadValue {
                field: field.name,
                text,
                value,
                expected,
            });
        }
    };
    if step == 0 {
        return Err(CronError::ZeroStep {
            field: field.name,
            text: text.to_owned(),
        });
    }
    let values = (start..=end).step_by(usize::try_from(step).unwrap_or(usize::MAX));
    Ok(values.fold(0, |bits, v| bits | 1 << v))
}

/// A number within the field's bounds, or one of its names (any case).
fn parse_value(field: &Field, text: &str, token: &str) -> Result<u32, CronError> {
    if token.bytes().all(|b| b.is_ascii_digit()) {
        return match token.parse::<u32>() {
            Ok(v) if (field.min..=field.max).contains(&v) => Ok(v),
            _ => Err(CronError::OutOfRange {
                field: field.name,
                text: text.to_owned(),
                value: token.to_owned(),
                min: field.min,
                max: field.max,
            }),
        };
    }
    let index = field
        .names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(token));
    let named = index
        .and_then(|i| u32::try_from(i).ok())
        .map(|i| field.min + i);
    named.ok_or_else(|| CronError::BadValue {
        field: field.name,
        text: text.to_owned(),
        value: token.to_owned(),
        expected: field.expected,
    })
}

/// The instant a local minute fires at: its earlier instant if ambiguous, the end of
/// the gap if it does not exist.
fn resolve(local: NaiveDateTime, tz: Tz) -> Option<u64> {
    if let Some(at) = tz.from_local_datetime(&local).earliest() {
        return millis(at);
    }
    let mut probe = local;
    for _ in 0..MAX_GAP_MINUTES {
        probe = probe.checked_add_signed(TimeDelta::minutes(1))?;
        if let Some(mut end) = tz.from_local_datetime(&probe).earliest() {
            // The transition is in the minute before `end`: exactly at `end` unless the
            // zone's offsets have seconds, as old local mean times do. Step back to it.
            let offset = end.offset().fix();
            for _ in 0..59 {
                match end.checked_sub_signed(TimeDelta::seconds(1)) {
                    Some(earlier) if earlier.offset().fix() == offset => end = earlier,
                    _ => break,
                }
            }
            return millis(end);
        }
    }
    None
}

fn millis(at: DateTime<Tz>) -> Option<u64> {
    u64::try_from(at.timestamp_millis()).ok()
}

fn next_month(date: NaiveDate) -> Option<NaiveDate> {
    match date.month() {
        12 => NaiveDate::from_ymd_opt(date.year().checked_add(1)?, 1, 1),
        month => NaiveDate::from_ymd_opt(date.year(), month + 1, 1),
    }
}

fn has(bits: u64, value: u32) -> bool {
    value < 64 && bits >> value & 1 == 1
}

/// Narrows a field's bits to its stored width; its range guarantees they fit.
fn narrow<T: TryFrom<u64> + Default>(bits: u64) -> T {
    T::try_from(bits).unwrap_or_default()
}
