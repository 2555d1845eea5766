//! `keel retry`: asks the coordinator to submit the part of a finished job that did not
//! succeed as a new job (a dead-letter replay, the `RetryJob` call), named
//! `<name> [retry of job N]` so `keel status` and `keel jobs` show which job it retries.
//! The coordinator decides what the new job holds, so the web console's retry makes
//! the same job.

use crate::connect::{runtime, ConnectArgs};
use crate::exit::{finish, Exit, Failure, EXIT_CODES};
use crate::output::{errln, one_line};
use crate::status::job_arg;
use crate::submit::{report_taken, Taken, WaitArgs};
use clap::Args;
use keel_grpc::client::CallError;
use std::process::ExitCode;

/// The help's account of what is submitted.
const RETRY_RULE: &str = "The new job is named <name> [retry of job N], which `keel status` \
and `keel jobs` show as its link to the old job. It holds every task of the old one that \
failed, was cancelled or was skipped, unchanged and in order. A dependency on a task that \
succeeded counts as satisfied and is dropped: an all-of group keeps its unfinished upstream \
tasks, an any-of group with a succeeded upstream task goes away, a quorum of k with s \
successes becomes a quorum of k - s over the rest. Outputs of succeeded tasks are not passed \
to the new job (task outputs as inputs are not part of Keel yet). Retrying the same job \
again while its retry is live or retained answers with that retry.";

#[derive(Args, Debug)]
#[command(after_help = format!("{RETRY_RULE}\n\n{EXIT_CODES}"))]
pub struct RetryArgs {
    /// The finished job to retry (`12` or `j12`).
    pub job_id: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub follow: WaitArgs,
}

pub fn run(args: &RetryArgs) -> ExitCode {
    let result = match job_arg(&args.job_id) {
        Ok(job) => runtime().block_on(retry(args, job)),
        Err(e) => Err(e),
    };
    finish("retry", result)
}

async fn retry(args: &RetryArgs, job: u64) -> Result<Exit, Failure> {
    let mut client = args.connect.connect().await?;
    let answer = client.retry_job(job).await.map_err(|e| refused(job, e))?;
    let spec = answer.spec.unwrap_or_default();
    if !answer.duplicate {
        // The old job has finished, so what it is now is what the retry was made from.
        let old = client.describe_job(job).await.ok();
        let status = old
            .as_ref()
            .and_then(|v| v.status.clone())
            .unwrap_or_default();
        let of = old.map_or(String::new(), |v| format!(" of its {}", v.tasks.len()));
        errln!(
            "keel retry: job {job} ({}) {}: submitting the {}{of} tasks that did not succeed as \"{}\"",
            one_line(&status.name, 60),
            one_line(&status.outcome, 30),
            spec.tasks.len(),
            one_line(&spec.name, 100)
        );
    }
    let taken = Taken {
        job: answer.job,
        tasks: answer.tasks,
        duplicate: answer.duplicate,
        attempts: 1,
    };
    report_taken(&mut client, &spec, taken, &args.follow, "retry").await
}

/// A refused retry in words; other failures as every command reports them.
fn refused(job: u64, e: CallError) -> Failure {
    let reason = e.refusal().map(|r| r.reason);
    match reason.as_deref() {
        Some("not_finished") => Failure::error(format!(
            "job {job} is still running; retry it once it has ended (`keel cancel {job}` ends it now)"
        )),
        Some("nothing_to_retry") => Failure::error(format!(
            "job {job}: nothing to retry: every task succeeded"
        )),
        _ => Failure::from(e),
    }
}
