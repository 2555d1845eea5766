//! Times as people read them: the coordinator's milliseconds since the Unix epoch in
//! the local time zone, RFC 3339, with how long ago (`12:04:05 (3m ago)`; the full date
//! when it is not today). The engine saturates far-away times to `u64::MAX`, shown as
//! "forever".

use crate::duration::coarse;
use chrono::{DateTime, Local, SecondsFormat, TimeZone};
use std::time::{SystemTime, UNIX_EPOCH};

/// The engine's "never": a time that saturated.
pub const FOREVER: u64 = u64::MAX;

/// Milliseconds since the Unix epoch now, on this machine.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn local<Tz: TimeZone>(tz: &Tz, ms: u64) -> Option<DateTime<Tz>> {
    let ms = i64::try_from(ms).ok()?;
    tz.timestamp_millis_opt(ms).single()
}

/// `12:04:05 (3m ago)` today, `2025-03-01T12:04:05+01:00 (2d ago)` on another day,
/// `forever` for a saturated time (or one past year 262143), in the local zone.
pub fn stamp(ms: u64, now: u64) -> String {
    stamp_in(&Local, ms, now)
}

/// [`stamp`] in a given zone.
pub fn stamp_in<Tz: TimeZone>(tz: &Tz, ms: u64, now: u64) -> String
where
    Tz::Offset: std::fmt::Display,
{
    if ms == FOREVER {
        return "forever".to_string();
    }
    // Past chrono's range (year 262143) is as good as never.
    let (Some(at), Some(today)) = (local(tz, ms), local(tz, now)) else {
        return "forever".to_string();
    };
    let when = if at.date_naive() == today.date_naive() {
        at.format("%H:%M:%S").to_string()
    } else {
        at.to_rfc3339_opts(SecondsFormat::Secs, false)
    };
    let relative = if ms <= now {
        format!("{} ago", coarse(now - ms))
    } else {
        format!("in {}", coarse(ms - now))
    };
    format!("{when} ({relative})")
}

/// Full RFC 3339 with milliseconds in the local zone, for JSON; `"forever"` for a
/// saturated time.
pub fn rfc3339(ms: u64) -> String {
    rfc3339_in(&Local, ms)
}

pub fn rfc3339_in<Tz: TimeZone>(tz: &Tz, ms: u64) -> String
where
    Tz::Offset: std::fmt::Display,
{
    if ms == FOREVER {
        return "forever".to_string();
    }
    match local(tz, ms) {
        Some(at) => at.to_rfc3339_opts(SecondsFormat::Millis, false),
        None => "forever".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    const NOON_UTC: u64 = 1_735_732_800_000; // 2025-01-01T12:00:00Z

    #[test]
    fn today_shows_the_time_and_another_day_the_full_date() {
        let tz = FixedOffset::east_opt(2 * 3600).unwrap();
        assert_eq!(
            stamp_in(&tz, NOON_UTC - 180_000, NOON_UTC),
            "13:57:00 (3m ago)"
        );
        assert_eq!(
            stamp_in(&tz, NOON_UTC + 30_000, NOON_UTC),
            "14:00:30 (in 30s)"
        );
        let yesterday = NOON_UTC - 2 * 86_400_000;
        assert_eq!(
            stamp_in(&tz, yesterday, NOON_UTC),
            "2024-12-30T14:00:00+02:00 (2d ago)"
        );
    }

    #[test]
    fn the_day_is_the_local_one() {
        // 23:30 UTC is already tomorrow at +02:00.
        let tz = FixedOffset::east_opt(2 * 3600).unwrap();
        let late = NOON_UTC + 11 * 3_600_000 + 1_800_000;
        assert!(stamp_in(&tz, late, NOON_UTC).starts_with("2025-01-02T01:30:00+02:00"));
        let utc = FixedOffset::east_opt(0).unwrap();
        assert!(stamp_in(&utc, late, NOON_UTC).starts_with("23:30:00 (in 11h)"));
    }

    #[test]
    fn saturated_times_are_forever() {
        let tz = FixedOffset::east_opt(0).unwrap();
        assert_eq!(stamp_in(&tz, u64::MAX, NOON_UTC), "forever");
        assert_eq!(rfc3339_in(&tz, u64::MAX), "forever");
        assert_eq!(
            rfc3339_in(&tz, NOON_UTC + 5),
            "2025-01-01T12:00:00.005+00:00"
        );
        // Past chrono's range but not saturated: no panic either.
        assert_eq!(rfc3339_in(&tz, u64::MAX - 1), "forever");
        assert_eq!(stamp_in(&tz, u64::MAX - 1, NOON_UTC), "forever");
    }
}
