//! A job's attempts on a timeline: the simulator's SVG timeline (one row per worker, one
//! bar per attempt coloured by how it ended), on times relative to the job's
//! submission, with attempts still running drawn up to now.

use crate::views::AttemptRow;
use keel_engine::{EndReason, TaskId, Time};
use keel_sim::Bar;

/// Attempts drawn at most (the newest); the attempts table lists the same ones.
pub(crate) const MAX_BARS: usize = 1_000;

/// The words the simulator's timeline colours, from an attempt's end: its end reason's
/// label, or `ended` for a word no reason has.
fn outcome(end: Option<&str>) -> &'static str {
    match end {
        None => "running",
        Some("succeeded") => "succeeded",
        Some(e) if e.starts_with("failed") => "failed",
        Some(e) => EndReason::ALL
            .iter()
            .map(|reason| reason.label())
            .find(|label| *label == e)
            .unwrap_or("ended"),
    }
}

/// The SVG of `attempts` of job `job` submitted at `submitted`, up to `until` (the
/// job's end, or now). None when there are no attempts yet.
pub(crate) fn svg(
    job: u64,
    attempts: &[AttemptRow],
    submitted: Time,
    until: Time,
) -> Option<String> {
    if attempts.is_empty() {
        return None;
    }
    let start = attempts.len().saturating_sub(MAX_BARS);
    let attempts = &attempts[start..];
    let rel = |t: Time| t.saturating_sub(submitted);
    let mut workers: Vec<String> = attempts.iter().map(|a| a.worker.clone()).collect();
    workers.sort();
    workers.dedup();
    let bars: Vec<Bar> = attempts
        .iter()
        .map(|a| Bar {
            worker: a.worker.clone(),
            task: TaskId::new(a.task),
            attempt: a.attempt,
            start: rel(a.started_at),
            end: rel(a.ended_at.unwrap_or(until)).max(rel(a.started_at)),
            outcome: outcome(a.end.as_deref()),
        })
        .collect();
    let title = format!("attempts of job {job}, ms since submission");
    Some(keel_sim::svg_timeline(
        &title,
        &workers,
        &bars,
        &[],
        rel(until),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(worker: &str, start: Time, end: Option<(Time, &str)>) -> AttemptRow {
        AttemptRow {
            task: 7,
            key: "k".into(),
            attempt: 1,
            epoch: 1,
            worker: worker.into(),
            started_at: start,
            ended_at: end.map(|e| e.0),
            end: end.map(|e| e.1.to_string()),
        }
    }

    #[test]
    fn a_row_per_worker_and_running_attempts_reach_now() {
        let attempts = [
            attempt("w<1>", 1_100, Some((1_300, "failed: <boom>"))),
            attempt("w2", 1_400, None),
        ];
        let out = svg(3, &attempts, 1_000, 2_000).unwrap();
        assert!(out.contains(">w&lt;1&gt;</text>"), "{out}");
        assert!(!out.contains("<boom>") && !out.contains("w<1>"));
        assert!(out.contains("100..300 ms: failed"), "{out}");
        assert!(out.contains("400..1000 ms: running"), "{out}");
        assert_eq!(svg(3, &[], 0, 0), None);
    }

    #[test]
    fn ends_map_to_the_words_the_timeline_colours() {
        for reason in EndReason::ALL {
            assert_eq!(outcome(Some(reason.label())), reason.label());
        }
        assert_eq!(outcome(None), "running");
        assert_eq!(outcome(Some("succeeded")), "succeeded");
        assert_eq!(outcome(Some("failed: x")), "failed");
        assert_eq!(outcome(Some("something new")), "ended");
    }
}
