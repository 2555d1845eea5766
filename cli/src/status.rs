//! `keel status`: a job, its tasks and their attempts as a table.

use crate::connect::{runtime, ConnectArgs};
use clap::Args;
use keel_grpc::proto::DescribeJobResponse;
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
        eprintln!("keel status: {:?} is not a job id", args.job_id);
        return ExitCode::FAILURE;
    };
    let result = runtime().block_on(async {
        let mut client = args.connect.client().await?;
        client.describe_job(job).await.map_err(|e| e.to_string())
    });
    match result {
        Ok(view) => {
            print!("{}", render(&view));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("keel status: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn parse_job_id(s: &str) -> Option<u64> {
    s.strip_prefix('j').unwrap_or(s).parse().ok()
}

/// The job line, then one row per task and an indented row per attempt.
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
            "job {} {:?}  tenant {}  lane {}  {}  {}/{} tasks remaining",
            s.id, s.name, s.tenant, s.lane, outcome, s.remaining, s.tasks
        );
    }
    let key_width = view
        .tasks
        .iter()
        .map(|t| t.key.len())
        .max()
        .unwrap_or(3)
        .max(3);
    let _ = writeln!(
        out,
        "{:<8} {:<key_width$} {:<10} {:>7} {:>8}  DETAIL",
        "TASK", "KEY", "STATE", "ATTEMPT", "FAILURES"
    );
    for t in &view.tasks {
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
            t.key,
            t.state,
            t.attempt,
            t.failures,
            detail.trim()
        );
        for a in &t.attempts {
            let ended = a.ended_at_ms.map_or("-".to_string(), |e| e.to_string());
            let end = if a.end.is_empty() { "running" } else { &a.end };
            let _ = writeln!(
                out,
                "{:<8}   attempt {} epoch {} on {}  started {}  ended {}  {}",
                "", a.attempt, a.epoch, a.worker, a.started_at_ms, ended, end
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
}
