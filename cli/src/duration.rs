//! Durations on the command line (`--timeout 5m`, `--retention 7d`) and in output
//! (`ran 2.1s`, `3m ago`).

use std::time::Duration;

const UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Parses number-unit pairs: `250ms`, `30s`, `5m`, `1h30m`, `7d` (units ms, s, m, h,
/// d). A bare number is refused: it would be unclear whether it means seconds or
/// milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("{text:?} is not a duration ({why}; e.g. 30s, 5m, 1h30m, 7d)");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad("empty"));
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(bad("expected a number"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| bad("number too large"))?;
        rest = &rest[digits..];
        let letters = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let unit = &rest[..letters];
        let Some((_, ms)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(bad(if unit.is_empty() {
                "a number needs a unit"
            } else {
                "unknown unit"
            }));
        };
        rest = &rest[letters..];
        total = n
            .checked_mul(*ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| bad("too long"))?;
    }
    Ok(Duration::from_millis(total))
}

/// `keel serve --retention`: a duration of at least a second, so a finished job stays
/// long enough for `keel submit --wait` to see how it ended.
pub fn parse_retention(text: &str) -> Result<Duration, String> {
    let retention = parse_duration(text)?;
    if retention < Duration::from_secs(1) {
        return Err(format!(
            "{text:?} is too short: a finished job must stay at least 1s for waiting clients to see how it ended"
        ));
    }
    Ok(retention)
}

/// A short human duration: `350ms`, `2.1s`, `3m05s`, `2h04m`, `3d04h`.
pub fn short(ms: u64) -> String {
    let (s, m, h, d) = (1_000, 60_000, 3_600_000, 86_400_000);
    if ms < s {
        format!("{ms}ms")
    } else if ms < m {
        format!("{:.1}s", ms as f64 / 1_000.0)
    } else if ms < h {
        format!("{}m{:02}s", ms / m, ms % m / s)
    } else if ms < d {
        format!("{}h{:02}m", ms / h, ms % h / m)
    } else {
        format!("{}d{:02}h", ms / d, ms % d / h)
    }
}

/// An exact duration in the units [`parse_duration`] reads, largest first, zero parts
/// left out: `1s`, `10m`, `1h30m`, `1s500ms`, `0ms`. It reads back as the same length.
pub fn exact(ms: u64) -> String {
    let mut rest = ms;
    let mut text = String::new();
    for (unit, size) in UNITS.iter().rev() {
        if rest >= *size {
            text.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    if text.is_empty() {
        "0ms".to_string()
    } else {
        text
    }
}

/// A coarse duration for "how long ago": the largest whole unit (`5s`, `3m`, `2h`, `4d`).
pub fn coarse(ms: u64) -> String {
    match ms {
        0..1_000 => "0s".to_string(),
        1_000..60_000 => format!("{}s", ms / 1_000),
        60_000..3_600_000 => format!("{}m", ms / 60_000),
        3_600_000..86_400_000 => format!("{}h", ms / 3_600_000),
        _ => format!("{}d", ms / 86_400_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit_and_combined() {
        let ms = |t: &str| parse_duration(t).unwrap().as_millis() as u64;
        assert_eq!(ms("250ms"), 250);
        assert_eq!(ms("30s"), 30_000);
        assert_eq!(ms("5m"), 300_000);
        assert_eq!(ms("1h"), 3_600_000);
        assert_eq!(ms("7d"), 604_800_000);
        assert_eq!(ms("1h30m"), 5_400_000);
        assert_eq!(ms("0s"), 0);
    }

    #[test]
    fn bad_durations_are_refused_saying_why() {
        for (text, why) in [
            ("", "empty"),
            ("5", "needs a unit"),
            ("5x", "unknown unit"),
            ("m", "expected a number"),
            ("-5s", "expected a number"),
            ("99999999999999999999s", "too large"),
            ("18446744073709551615d", "too long"),
            ("1.5h", "needs a unit"),
        ] {
            let e = parse_duration(text).unwrap_err();
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn retention_is_at_least_a_second() {
        assert_eq!(parse_retention("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_retention("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_retention("999ms").unwrap_err().contains("too short"));
        assert!(parse_retention("0s").unwrap_err().contains("too short"));
    }

    #[test]
    fn exact_durations_read_back_as_the_same_length() {
        for (ms, text) in [
            (0, "0ms"),
            (1_000, "1s"),
            (1_500, "1s500ms"),
            (600_000, "10m"),
            (5_400_000, "1h30m"),
            (88_200_000, "1d30m"),
        ] {
            assert_eq!(exact(ms), text);
            assert_eq!(parse_duration(text).unwrap().as_millis() as u64, ms);
        }
        let max = exact(u64::MAX);
        assert_eq!(parse_duration(&max).unwrap().as_millis() as u64, u64::MAX);
    }

    #[test]
    fn short_and_coarse_durations_read_well() {
        assert_eq!(short(0), "0ms");
        assert_eq!(short(350), "350ms");
        assert_eq!(short(2_140), "2.1s");
        assert_eq!(short(185_000), "3m05s");
        assert_eq!(short(7_440_000), "2h04m");
        assert_eq!(short(273_600_000), "3d04h");
        assert_eq!(short(u64::MAX).chars().last(), Some('h'));
        assert_eq!(coarse(999), "0s");
        assert_eq!(coarse(5_500), "5s");
        assert_eq!(coarse(200_000), "3m");
        assert_eq!(coarse(7_300_000), "2h");
        assert_eq!(coarse(u64::MAX).chars().last(), Some('d'));
    }
}
