//! Paths and query strings, checked strictly: unknown or repeated parameters, bad
//! percent escapes, invalid UTF-8, control characters and out-of-range numbers are
//! refused with a message naming the parameter, never guessed at.

use crate::error::ApiError;
use keel_engine::{JobId, TaskId};
use std::collections::BTreeMap;

/// Longest value echoed back in an error message.
const ECHO: usize = 64;
/// Longest accepted search text or name filter, as the engine's default name limit.
pub(crate) const MAX_TEXT: usize = 256;
pub(crate) const DEFAULT_LIMIT: usize = 100;
pub(crate) const MAX_LIMIT: usize = 500;

fn echo(text: &str) -> String {
    let mut end = text.len().min(ECHO);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < text.len() { "…" } else { "" };
    format!("{:?}{cut}", &text[..end])
}

/// `%XX` and `+` decoded; anything else malformed is an error naming `what`.
fn decode(raw: &str, what: &str) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                let byte = byte.ok_or_else(|| {
                    ApiError::bad_request(format!("{what}: bad percent escape in {}", echo(raw)))
                })?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::bad_request(format!("{what}: not valid UTF-8 once decoded")))
}

/// The query's parameters; each may appear once and must be one of `allowed`.
pub(crate) fn query(
    raw: Option<&str>,
    allowed: &[&'static str],
) -> Result<BTreeMap<&'static str, String>, ApiError> {
    let mut params = BTreeMap::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key, "parameter name")?;
        let Some(name) = allowed.iter().copied().find(|a| *a == key) else {
            let known = if allowed.is_empty() {
                "this endpoint takes none".to_string()
            } else {
                format!("known: {}", allowed.join(", "))
            };
            return Err(ApiError::bad_request(format!(
                "unknown parameter {} ({known})",
                echo(&key)
            )));
        };
        let value = decode(value, name)?;
        if params.insert(name, value).is_some() {
            return Err(ApiError::bad_request(format!(
                "parameter {name} given twice"
            )));
        }
    }
    Ok(params)
}

/// Free text (a name filter or a search): at most [`MAX_TEXT`] bytes, no control
/// characters. Empty means "no filter".
pub(crate) fn text(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.len() > MAX_TEXT {
        return Err(ApiError::bad_request(format!(
            "{name}: longer than {MAX_TEXT} bytes"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "{name}: contains a control character"
        )));
    }
    Ok(Some(value))
}

/// A whole number in `1..=max`, `default` when absent.
pub(crate) fn count(
    name: &str,
    value: Option<String>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(default);
    };
    match value.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) && value.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(ApiError::bad_request(format!(
            "{name}: expected a whole number from 1 to {max}, got {}",
            echo(&value)
        ))),
    }
}

/// A job id as the path shows it: decimal digits, as `keel submit` prints them.
pub(crate) fn job_id(raw: &str) -> Result<JobId, ApiError> {
    number("job id", raw).map(JobId::new)
}

/// A task id as the path shows it: decimal digits.
pub(crate) fn task_id(raw: &str) -> Result<TaskId, ApiError> {
    number("task id", raw).map(TaskId::new)
}

fn number(what: &str, raw: &str) -> Result<u64, ApiError> {
    let valid = !raw.is_empty() && raw.len() <= 20 && raw.bytes().all(|b| b.is_ascii_digit());
    match raw.parse::<u64>() {
        Ok(id) if valid => Ok(id),
        _ => Err(ApiError::bad_request(format!(
            "{what}: expected a number, got {}",
            echo(raw)
        ))),
    }
}

/// Which jobs a list shows, by state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StateFilter {
    /// Not finished.
    Active,
    Finished,
    /// One state word of [`crate::views::job_state`].
    Exactly(&'static str),
}

pub(crate) const JOB_STATES: [&str; 7] = [
    "queued",
    "blocked",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "deadline_exceeded",
];

impl StateFilter {
    pub(crate) fn parse(value: Option<String>) -> Result<Option<StateFilter>, ApiError> {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let filter = match value.as_str() {
            "active" => StateFilter::Active,
            "finished" => StateFilter::Finished,
            other => match JOB_STATES.iter().find(|s| **s == other) {
                Some(state) => StateFilter::Exactly(state),
                None => {
                    return Err(ApiError::bad_request(format!(
                        "state: expected active, finished or one of {}, got {}",
                        JOB_STATES.join(", "),
                        echo(&value)
                    )))
                }
            },
        };
        Ok(Some(filter))
    }

    pub(crate) fn admits(self, state: &str, finished: bool) -> bool {
        match self {
            StateFilter::Active => !finished,
            StateFilter::Finished => finished,
            StateFilter::Exactly(s) => s == state,
        }
    }
}

/// The filters of the jobs list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct JobFilter {
    pub state: Option<StateFilter>,
    pub tenant: Option<String>,
    pub lane: Option<String>,
    /// A job id, or part of a name (case-insensitive).
    pub search: Option<String>,
    pub limit: usize,
}

impl JobFilter {
    pub(crate) fn from_query(raw: Option<&str>) -> Result<JobFilter, ApiError> {
        let mut q = query(raw, &["state", "tenant", "lane", "q", "limit"])?;
        Ok(JobFilter {
            state: StateFilter::parse(q.remove("state"))?,
            tenant: text("tenant", q.remove("tenant"))?,
            lane: text("lane", q.remove("lane"))?,
            search: text("q", q.remove("q"))?.map(|s| s.to_lowercase()),
            limit: count("limit", q.remove("limit"), DEFAULT_LIMIT, MAX_LIMIT)?,
        })
    }

    /// Whether the search text names this job by id or by part of its name.
    pub(crate) fn searched(&self, id: JobId, name: &str) -> bool {
        let Some(search) = &self.search else {
            return true;
        };
        let by_id = search.trim().trim_start_matches('j').parse::<u64>() == Ok(id.get());
        by_id || name.to_lowercase().contains(search.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_strictly_and_name_what_is_wrong() {
        let q = query(Some("q=a%20b+c&limit=5"), &["q", "limit"]).unwrap();
        assert_eq!(q["q"], "a b c");
        let bad = |raw: &str| query(Some(raw), &["q"]).unwrap_err().message;
        assert!(
            bad("x=1").contains("unknown parameter \"x\""),
            "{}",
            bad("x=1")
        );
        assert!(bad("q=1&q=2").contains("given twice"));
        assert!(bad("q=%zz").contains("bad percent escape"));
        assert!(bad("q=%e9").contains("UTF-8"));
        assert!(bad("q=%4").contains("bad percent escape"));
        assert!(bad(&format!("{}=1", "k".repeat(500))).len() < 200);
    }

    #[test]
    fn filters_refuse_out_of_range_values() {
        let f = JobFilter::from_query(Some("state=failed&tenant=&limit=")).unwrap();
        assert_eq!(f.state, Some(StateFilter::Exactly("failed")));
        assert_eq!((f.tenant, f.limit), (None, DEFAULT_LIMIT));
        for raw in [
            "state=broken",
            "limit=0",
            "limit=501",
            "limit=+5",
            "limit=99999999999999999999999",
            "tenant=a%0Ab",
        ] {
            assert!(JobFilter::from_query(Some(raw)).is_err(), "{raw}");
        }
        let long = format!("q={}", "a".repeat(MAX_TEXT + 1));
        assert!(JobFilter::from_query(Some(&long)).is_err());
    }

    #[test]
    fn job_ids_are_plain_numbers() {
        assert_eq!(job_id("42"), Ok(JobId::new(42)));
        for raw in ["", "-1", "+1", "1e3", "x", "18446744073709551616", " 1"] {
            assert!(job_id(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn search_matches_ids_and_names() {
        let f = JobFilter::from_query(Some("q=ETL")).unwrap();
        assert!(f.searched(JobId::new(3), "nightly-etl"));
        assert!(!f.searched(JobId::new(3), "report"));
        let f = JobFilter::from_query(Some("q=j3")).unwrap();
        assert!(f.searched(JobId::new(3), "x"));
    }
}
