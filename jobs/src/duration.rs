//! Durations in spec files: an integer number of milliseconds, or a string of
//! number-unit pairs such as "250ms", "30s", "1h30m" (units ms, s, m, h, d).

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// A duration in milliseconds, read from a spec file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Millis(pub u64);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MillisVisitor)
    }
}

struct MillisVisitor;

impl Visitor<'_> for MillisVisitor {
    type Value = Millis;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as \"30s\" or \"1h30m\", or an integer of milliseconds")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Millis, E> {
        u64::try_from(v)
            .map(Millis)
            .map_err(|_| E::custom(format!("a duration cannot be negative ({v})")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Millis, E> {
        Ok(Millis(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Millis, E> {
        parse(v).map(Millis).map_err(E::custom)
    }
}

/// Parses "1h30m"-style text into milliseconds.
pub(crate) fn parse(text: &str) -> Result<u64, String> {
    let bad = || {
        format!("invalid duration {text:?}: expected number-unit pairs like \"1h30m\" or \"250ms\" (units ms, s, m, h, d)")
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = number
            .checked_mul(scale)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
    }
    Ok(total)
}

/// Formats milliseconds the way a person would write them: "1h 20m", "2s 500ms", "0s".
pub fn format(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let units = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ];
    let mut rest = ms;
    let mut parts = Vec::new();
    for (scale, name) in units {
        if rest >= scale {
            parts.push(format!("{}{name}", rest / scale));
            rest %= scale;
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unit_pairs() {
        assert_eq!(parse("250ms"), Ok(250));
        assert_eq!(parse("1h30m"), Ok(5_400_000));
        assert_eq!(parse("2d"), Ok(172_800_000));
        assert_eq!(parse("1m5s10ms"), Ok(65_010));
    }

    #[test]
    fn refuses_malformed_or_overflowing_text() {
        for text in ["", "5", "s", "5x", "1.5s", "-3s", "5 s", "1h30"] {
            assert!(parse(text).is_err(), "{text:?} parsed");
        }
        assert!(parse("99999999999999999999d").is_err());
        assert!(parse("999999999999999d").unwrap_err().contains("too long"));
    }

    #[test]
    fn formats_round_trip() {
        for ms in [1, 999, 1_000, 61_001, 5_400_000, 90_061_001] {
            let text = format(ms).replace(' ', "");
            assert_eq!(parse(&text), Ok(ms), "{text}");
        }
        assert_eq!(format(4_800_000), "1h 20m");
    }
}
