//! `keel status`: a job, its tasks and their attempts as a table.

use crate::connect::{runtime, ConnectArgs};
use crate::output::{self, errln, out};
use clap::Args;
use keel_grpc::proto::DescribeJobResponse;
use keel_jobs::terminal_safe;
use std::fmt::Write;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The job id `keel submit` printed (`12` or `j12`).
    pub job_id: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub fn run(args: &StatusArgs) -> ExitCode {
    let Some(job) = parse_job_id(&args.job_id) else {
        errln!(
            "keel status: \"{}\" is not a job id",
            terminal_safe(&args.job_id)
        );
        return ExitCode::FAILURE;
    };
    let result = runtime().block_on(async {
        let mut client = args.connect.client().await?;
        client.describe_job(job).await.map_err(|e| e.to_string())
    });
    match result {
        Ok(view) => {
            out!("{}", render(&view));
            ExitCode::SUCCESS
        }
        Err(e) => {
            errln!("keel status: {}", terminal_safe(&e));
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn parse_job_id(s: &str) -> Option<u64> {
    s.strip_prefix('j').unwrap_or(s).parse().ok()
}

/// Longest detail cell: a failure message can be kilobytes of stderr.
const MAX_DETAIL: usize = 120;

/// The job line, then one row per task and an indented row per attempt. Every field
/// that came from a user or a worker is escaped ([`terminal_safe`]) and each row is one
/// line, however many lines a failure message has.
pub fn render(view: &DescribeJobResponse) -> String {
    let mut out = String::new();
    if let Some(s) = &view.status {
        let outcome = if s.outcome.is_empty() {
            "running"
        } else {
            &s.outcome
        };
        let _ = writeln!(
            out,
            "job {} \"{}\"  tenant {}  lane {}  {}  {}/{} tasks remaining",
            s.id,
            terminal_safe(&s.name),
            terminal_safe(&s.tenant),
            terminal_safe(&s.lane),
            terminal_safe(outcome),
            s.remaining,
            s.tasks
        );
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
        "{:<8} {:<key_width$} {:<10} {:>7} {:>8}  DETAIL",
        "TASK", "KEY", "STATE", "ATTEMPT", "FAILURES"
    );
    for (t, key) in view.tasks.iter().zip(&keys) {
        let mut detail = t.detail.clone();
        if let Some(p) = t.progress_per_mille {
            let _ = write!(
                detail,
                " [{:.1}% {}]",
                f64::from(p) / 10.0,
                t.progress_message
            );
        }
        let _ = writeln!(
            out,
            "{:<8} {:<key_width$} {:<10} {:>7} {:>8}  {}",
            format!("t{}", t.id),
            key,
            terminal_safe(&t.state),
            t.attempt,
            t.failures,
            output::one_line(&detail, MAX_DETAIL)
        );
        for a in &t.attempts {
            let ended = a.ended_at_ms.map_or("-".to_string(), |e| e.to_string());
            let end = if a.end.is_empty() { "running" } else { &a.end };
            let _ = writeln!(
                out,
                "{:<8}   attempt {} epoch {} on {}  started {}  ended {}  {}",
                "",
                a.attempt,
                a.epoch,
                output::one_line(&a.worker, MAX_DETAIL),
                a.started_at_ms,
                ended,
                output::one_line(end, MAX_DETAIL)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_grpc::proto::{AttemptView, JobStatus, TaskView};

    #[test]
    fn job_ids_parse_with_or_without_the_prefix() {
        assert_eq!(parse_job_id("j12"), Some(12));
        assert_eq!(parse_job_id("12"), Some(12));
        assert_eq!(parse_job_id("job"), None);
    }

    #[test]
    fn the_table_shows_tasks_and_their_attempts() {
        let view = DescribeJobResponse {
            status: Some(JobStatus {
                id: 3,
                name: "etl".into(),
                tenant: "default".into(),
                lane: "default".into(),
                tasks: 1,
                remaining: 0,
                outcome: "succeeded".into(),
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
                        started_at_ms: 10,
                        ended_at_ms: Some(20),
                        end: "worker_lost".into(),
                    },
                    AttemptView {
                        attempt: 2,
                        epoch: 2,
                        worker: "w2".into(),
                        started_at_ms: 30,
                        ended_at_ms: Some(40),
                        end: "succeeded".into(),
                    },
                ],
                ..Default::default()
            }],
        };
        let text = render(&view);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "job 3 \"etl\"  tenant default  lane default  succeeded  0/1 tasks remaining"
        );
        assert!(
            lines[2].starts_with("t7       extract succeeded        2"),
            "{text}"
        );
        assert!(lines[3].contains("attempt 1 epoch 1 on w1  started 10  ended 20  worker_lost"));
        assert!(lines[4].contains("attempt 2 epoch 2 on w2"));
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
        let text = render(&view);
        assert!(!text.chars().any(acted_on), "{text:?}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[0].contains("\"x\\x1b[2J\\r\\x07\\x00\\u{202e}gpj.exe\""),
            "{}",
            lines[0]
        );
        assert!(
            lines[2].ends_with("exit status: 1: first line ⏎ x\\x1b[2J\\r\\x07\\x00\\u{202e}gpj.exe ⏎ last line [50.0% x\\x1b[2J\\r\\x07\\x00\\u{202e}gpj.exe]"),
            "{}",
            lines[2]
        );
        assert!(lines[3].contains("on w ⏎ x\\x1b"), "{}", lines[3]);
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
        let text = render(&view);
        let row = text.lines().nth(1).unwrap();
        assert_eq!(text.lines().count(), 2);
        let detail = row.split("  ").last().unwrap();
        assert!(detail.ends_with('…'), "{row}");
        assert_eq!(detail.chars().count(), MAX_DETAIL, "{detail}");
    }
}
