//! `keel retry`: submits the part of a finished job that did not succeed as a new job
//! (a dead-letter replay), named `<name>-retry-<n>-of-j<job>` so `keel status` and
//! `keel jobs` show which job it retries. The rule for its tasks and dependencies is in
//! [`crate::retry_spec`].

use crate::connect::{runtime, ConnectArgs};
use crate::exit::{finish, Exit, Failure, EXIT_CODES};
use crate::output::{errln, one_line};
use crate::retry_spec::{retry_name, retry_spec};
use crate::status::job_arg;
use crate::submit::{send, WaitArgs};
use clap::Args;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// The help's account of what is submitted.
const RETRY_RULE: &str = "The new job is named <name>-retry-<n>-of-j<job> (n counts retries \
of retries), which `keel status` and `keel jobs` show as its link to the old job. It holds every task of the old one that failed, was \
cancelled or was skipped, unchanged and in order. A dependency on a task that succeeded \
counts as satisfied and is dropped: an all-of group keeps its unfinished upstream tasks, \
an any-of group with a succeeded upstream task goes away, a quorum of k with s successes \
becomes a quorum of k - s over the rest. Outputs of succeeded tasks are not passed to the \
new job (task outputs as inputs are not part of Keel yet). Retrying the same job again \
while its retry is live or retained answers with that retry.";

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
    let view = client.describe_job(job).await?;
    let status = view.status.clone().unwrap_or_default();
    if status.outcome.is_empty() {
        return Err(Failure::error(format!(
            "job {job} is still running; retry it once it has ended (`keel cancel {job}` ends it now)"
        )));
    }
    let states: BTreeMap<String, String> = view
        .tasks
        .iter()
        .map(|t| (t.key.clone(), t.state.clone()))
        .collect();
    let spec = client.job_spec(job).await?;
    let retry = retry_spec(&spec, &states, retry_name(&status.name, job))
        .map_err(|e| Failure::error(format!("job {job}: {e}")))?;
    errln!(
        "keel retry: job {job} ({}) {}: submitting the {} of its {} tasks that did not succeed as \"{}\"",
        one_line(&status.name, 60),
        one_line(&status.outcome, 30),
        retry.tasks.len(),
        spec.tasks.len(),
        one_line(&retry.name, 100)
    );
    send(&mut client, retry, &args.follow, "retry").await
}
