//! `keel status` as text: the job line, its times and retry link, then one row per task
//! (its key first) with an indented row per attempt and, for a task that waits, why.

use crate::clock::stamp;
use crate::duration::short;
use crate::json::state_word;
use crate::output::one_line;
use keel_grpc::proto::{AttemptView, DescribeJobResponse, JobStatus, TaskView};
use keel_jobs::terminal_safe;
use std::fmt::Write;

/// Longest detail cell: a failure message can be kilobytes of stderr.
pub const MAX_DETAIL: usize = 120;

/// The job's header lines.
fn header(out: &mut String, s: &JobStatus, now: u64) {
    let _ = writeln!(
        out,
        "job {} \"{}\"  tenant {}  lane {}  {}  {}/{} tasks remaining",
        s.id,
        terminal_safe(&s.name),
        terminal_safe(&s.tenant),
        terminal_safe(&s.lane),
        terminal_safe(state_word(s)),
        s.remaining,
        s.tasks
    );
    let mut times = format!("  submitted {}", stamp(s.submitted_at_ms, now));
    match s.finished_at_ms {
        Some(end) => {
            let _ = write!(
                times,
                ", finished {}, took {}",
                stamp(end, now),
                short(end.saturating_sub(s.submitted_at_ms))
            );
        }
        None => {
            let _ = write!(
                times,
                ", running for {}",
                short(now.saturating_sub(s.submitted_at_ms))
            );
        }
    }
    let _ = writeln!(out, "{times}");
    if let Some(old) = keel_engine::retried_from(&s.name).map(keel_engine::JobId::get) {
        let _ = writeln!(out, "  retry of job {old} (`keel status {old}`)");
    }
    for note in &s.budget_notes {
        let _ = writeln!(out, "  {}", one_line(note, MAX_DETAIL * 2));
    }
}

/// `stopped by budget "llm" of j3: its tokens hard limit was reached`.
pub(crate) fn budget_stop_words(t: &TaskView) -> String {
    let Some(stop) = &t.budget_stop else {
        return t.detail.clone();
    };
    let owner = match stop.owner.as_ref().and_then(keel_grpc::owner_from_proto) {
        Some(owner) => owner.to_string(),
        None => "its job or tenant".into(),
    };
    format!(
        "stopped by budget {:?} of {owner}: its {} hard limit was reached",
        stop.budget, stop.dimension
    )
}

/// The state's detail in words: who runs it and until when, what it waits for.
fn detail(t: &TaskView, now: u64) -> String {
    let mut text = match t.state.as_str() {
        "running" => match t.until_ms {
            Some(until) => format!("on {}, lease until {}", t.worker, stamp(until, now)),
            None => format!("on {}", t.worker),
        },
        "delayed" => match t.until_ms {
            Some(until) => format!("not before {}", stamp(until, now)),
            None => t.detail.clone(),
        },
        "suspended" if !t.waitpoint.is_empty() => format!("waiting for signal \"{}\"", t.waitpoint),
        "parked" => "held back by the job's max_concurrency".to_string(),
        "rate_limited" => match t.until_ms {
            Some(until) => format!(
                "waiting for the rate limit of {}, a token at {}",
                t.detail,
                stamp(until, now)
            ),
            None => format!("waiting for the rate limit of {}", t.detail),
        },
        "waiting" => "waiting for its dependencies".to_string(),
        "budget_stopped" => budget_stop_words(t),
        _ => t.detail.clone(),
    };
    if let Some(p) = t.progress_per_mille {
        let _ = write!(
            text,
            " [{:.1}% {}]",
            f64::from(p) / 10.0,
            t.progress_message
        );
    }
    text
}

fn attempt_line(a: &AttemptView, now: u64) -> String {
    let ran = match a.ended_at_ms {
        Some(end) => format!("ran {}", short(end.saturating_sub(a.started_at_ms))),
        None => format!("running for {}", short(now.saturating_sub(a.started_at_ms))),
    };
    let end = if a.end.is_empty() { "running" } else { &a.end };
    format!(
        "    attempt {} on {}  started {}, {ran}  {}",
        a.attempt,
        one_line(&a.worker, MAX_DETAIL),
        stamp(a.started_at_ms, now),
        one_line(end, MAX_DETAIL)
    )
}

/// The whole table. `explanations[i]` says why task `i` waits, if it does. Every field
/// that came from a user or a worker is escaped ([`terminal_safe`]) and each row is
/// one line, however many lines a failure message has.
pub fn render(view: &DescribeJobResponse, explanations: &[Option<String>], now: u64) -> String {
    let mut out = String::new();
    if let Some(s) = &view.status {
        header(&mut out, s, now);
    }
    let keys: Vec<String> = view
        .tasks
        .iter()
        .map(|t| terminal_safe(&t.key).into_owned())
        .collect();
    let key_width = keys
        .iter()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(3)
        .max(3);
    let _ = writeln!(
        out,
        "{:<key_width$} {:<8} {:<10} {:>7} {:>8}  DETAIL",
        "KEY", "TASK", "STATE", "ATTEMPT", "FAILURES"
    );
    for (i, (t, key)) in view.tasks.iter().zip(&keys).enumerate() {
        let row = format!(
            "{:<key_width$} {:<8} {:<10} {:>7} {:>8}  {}",
            key,
            format!("t{}", t.id),
            terminal_safe(&t.state),
            t.attempt,
            t.failures,
            one_line(&detail(t, now), MAX_DETAIL)
        );
        let _ = writeln!(out, "{}", row.trim_end());
        if let Some(why) = explanations.get(i).and_then(Option::as_deref) {
            let _ = writeln!(out, "    why: {}", one_line(why, MAX_DETAIL));
        }
        for a in &t.attempts {
            let _ = writeln!(out, "{}", attempt_line(a, now));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_grpc::proto::{AttemptView, JobStatus, TaskView};

    const NOW: u64 = 1_735_732_800_000;

    fn etl() -> DescribeJobResponse {
        DescribeJobResponse {
            status: Some(JobStatus {
                id: 3,
                name: "etl [retry of job 2]".into(),
                tenant: "default".into(),
                lane: "default".into(),
                tasks: 1,
                remaining: 0,
                outcome: "succeeded".into(),
                submitted_at_ms: NOW - 60_000,
                finished_at_ms: Some(NOW - 30_000),
                ..Default::default()
            }),
            tasks: vec![TaskView {
                id: 7,
                key: "extract".into(),
                state: "succeeded".into(),
                attempt: 2,
                attempts: vec![
                    AttemptView {
                        attempt: 1,
                        epoch: 1,
                        worker: "w1".into(),
                        started_at_ms: NOW - 50_000,
                        ended_at_ms: Some(NOW - 48_000),
                        end: "worker_lost".into(),
                    },
                    AttemptView {
                        attempt: 2,
                        epoch: 2,
                        worker: "w2".into(),
                        started_at_ms: NOW - 40_000,
                        ended_at_ms: Some(NOW - 37_900),
                        end: "succeeded".into(),
                    },
                ],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn the_table_shows_keys_first_times_and_the_retry_link() {
        let text = render(&etl(), &[], NOW);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "job 3 \"etl [retry of job 2]\"  tenant default  lane default  succeeded  0/1 tasks remaining"
        );
        assert!(lines[1].starts_with("  submitted "), "{}", lines[1]);
        assert!(lines[1].contains("(1m ago), finished "), "{}", lines[1]);
        assert!(lines[1].ends_with("(30s ago), took 30.0s"), "{}", lines[1]);
        assert_eq!(lines[2], "  retry of job 2 (`keel status 2`)");
        assert!(lines[3].starts_with("KEY     TASK"), "{}", lines[3]);
        assert!(
            lines[4].starts_with("extract t7       succeeded        2"),
            "{text}"
        );
        assert!(
            lines[5].starts_with("    attempt 1 on w1  started "),
            "{}",
            lines[5]
        );
        assert!(
            lines[5].ends_with("(50s ago), ran 2.0s  worker_lost"),
            "{}",
            lines[5]
        );
        assert!(lines[6].ends_with("ran 2.1s  succeeded"), "{}", lines[6]);
        assert!(
            !text.contains(&NOW.to_string()[..6]),
            "raw milliseconds: {text}"
        );
    }

    #[test]
    fn waiting_tasks_say_why_and_forever_is_a_word() {
        let mut view = etl();
        view.tasks[0].state = "delayed".into();
        view.tasks[0].until_ms = Some(u64::MAX);
        view.tasks[0].attempts.clear();
        let text = render(
            &view,
            &[Some("no live worker serves lane \"x\"".into())],
            NOW,
        );
        assert!(text.contains("not before forever"), "{text}");
        assert!(
            text.contains("\n    why: no live worker serves lane \"x\"\n"),
            "{text}"
        );
    }

    /// Characters a terminal acts on instead of showing: none may reach it.
    fn acted_on(c: char) -> bool {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
    }

    #[test]
    fn names_messages_and_worker_ids_are_escaped_and_each_row_is_one_line() {
        let hostile = "x\u{1b}[2J\r\u{7}\0\u{202e}gpj.exe";
        let view = DescribeJobResponse {
            status: Some(JobStatus {
                id: 1,
                name: hostile.into(),
                tenant: hostile.into(),
                lane: hostile.into(),
                tasks: 1,
                remaining: 1,
                ..Default::default()
            }),
            tasks: vec![TaskView {
                id: 2,
                key: hostile.into(),
                state: "failed".into(),
                detail: format!("exit status: 1: first line\n\n  {hostile}\r\nlast line"),
                progress_per_mille: Some(500),
                progress_message: hostile.into(),
                attempts: vec![AttemptView {
                    attempt: 1,
                    worker: format!("w\n{hostile}"),
                    end: format!("failed\n{hostile}"),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let text = render(&view, &[Some(hostile.into())], NOW);
        assert!(!text.chars().any(acted_on), "{text:?}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert!(
            lines[0].contains("\"x\\x1b[2J\\r\\x07\\x00\\u{202e}gpj.exe\""),
            "{}",
            lines[0]
        );
        assert!(
            lines[3].ends_with("exit status: 1: first line ⏎ x\\x1b[2J\\r\\x07\\x00\\u{202e}gpj.exe ⏎ last line [50.0% x\\x1b[2J\\r\\x07\\x00\\u{202e}gpj.exe]"),
            "{}",
            lines[3]
        );
        assert!(lines[5].contains("on w ⏎ x\\x1b"), "{}", lines[5]);
    }

    #[test]
    fn a_long_failure_message_is_cut_to_one_short_line() {
        let view = DescribeJobResponse {
            tasks: vec![TaskView {
                id: 2,
                key: "a".into(),
                state: "failed".into(),
                detail: "error line\n".repeat(1000),
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = render(&view, &[], NOW);
        let row = text.lines().nth(1).unwrap();
        assert_eq!(text.lines().count(), 2);
        let detail = row.split("  ").last().unwrap();
        assert!(detail.ends_with('…'), "{row}");
        assert_eq!(detail.chars().count(), MAX_DETAIL, "{detail}");
    }
}
