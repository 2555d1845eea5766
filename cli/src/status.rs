//! `keel status`: a job, its tasks and their attempts, as a table or JSON, with why a
//! queued or blocked task waits; the exit status says how the job ended.

use crate::clock::now_ms;
use crate::connect::{runtime, ConnectArgs};
use crate::exit::{finish, Exit, Failure, EXIT_CODES};
use crate::explain;
use crate::json;
use crate::output::out;
use crate::plan::Format;
use crate::status_text;
use clap::Args;
use keel_grpc::client::Client;
use keel_grpc::proto::{DescribeJobResponse, WorkerInfo};
use keel_jobs::terminal_safe;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct StatusArgs {
    /// The job id `keel submit` printed (`12` or `j12`).
    pub job_id: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Output format (JSON fields: cli/README.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &StatusArgs) -> ExitCode {
    let result = match job_arg(&args.job_id) {
        Ok(job) => runtime().block_on(status(args, job)),
        Err(e) => Err(e),
    };
    finish("status", result)
}

async fn status(args: &StatusArgs, job: u64) -> Result<Exit, Failure> {
    let mut client = args.connect.connect().await?;
    let view = client.describe_job(job).await?;
    let workers = workers_of(&mut client).await;
    out!(
        "{}",
        report(&view, workers.as_deref(), args.format, now_ms())
    );
    Ok(outcome_exit(&view))
}

/// A job id argument (`12` or `j12`).
pub fn job_arg(text: &str) -> Result<u64, Failure> {
    parse_job_id(text)
        .ok_or_else(|| Failure::error(format!("\"{}\" is not a job id", terminal_safe(text))))
}

pub(crate) fn parse_job_id(s: &str) -> Option<u64> {
    s.strip_prefix('j').unwrap_or(s).parse().ok()
}

/// The exit status for the job's outcome; 0 while it runs.
pub fn outcome_exit(view: &DescribeJobResponse) -> Exit {
    Exit::of_outcome(view.status.as_ref().map_or("", |s| s.outcome.as_str()))
}

/// The coordinator's workers, or `None` from one that cannot list them (an older
/// version): explanations are then left out rather than failing the command.
pub async fn workers_of(client: &mut Client) -> Option<Vec<WorkerInfo>> {
    client.list_workers().await.ok().map(|r| r.workers)
}

/// Why each task waits, for queued and blocked tasks, from the workers list.
pub fn explanations(
    view: &DescribeJobResponse,
    workers: Option<&[WorkerInfo]>,
    now: u64,
) -> Vec<Option<String>> {
    let lane = view.status.as_ref().map_or("default", |s| s.lane.as_str());
    view.tasks
        .iter()
        .map(|t| match (t.state.as_str(), workers) {
            ("queued" | "blocked", Some(ws)) => explain::queued(lane, &t.capabilities, ws, now),
            _ => None,
        })
        .collect()
}

/// The status report in `format`.
pub fn report(
    view: &DescribeJobResponse,
    workers: Option<&[WorkerInfo]>,
    format: Format,
    now: u64,
) -> String {
    let why = explanations(view, workers, now);
    match format {
        Format::Text => status_text::render(view, &why, now),
        Format::Json => json::document(&json::status(view, &why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_parse_with_or_without_the_prefix() {
        assert_eq!(parse_job_id("j12"), Some(12));
        assert_eq!(parse_job_id("12"), Some(12));
        assert_eq!(parse_job_id("job"), None);
        assert_eq!(
            job_arg("x\u{1b}").unwrap_err().message,
            "\"x\\x1b\" is not a job id"
        );
    }
}
