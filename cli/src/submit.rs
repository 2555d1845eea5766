//! `keel submit`: reads a job spec file, checks it with keel-jobs (the same checks as
//! `keel plan`), submits it and prints the job id. With `--wait` it shows the tasks'
//! states until the job ends and exits 0 only if the job succeeded.

use crate::connect::{runtime, ConnectArgs};
use crate::output::{errln, one_line, outln};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use keel_grpc::client::Client;
use keel_grpc::job_spec_to_proto;
use keel_grpc::proto::DescribeJobResponse;
use keel_jobs::{load_job, terminal_safe, Limits};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// Job spec file (TOML), as `keel plan` reads it.
    pub job: PathBuf,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Wait for the job to end, showing task counts by state.
    #[arg(long)]
    pub wait: bool,
}

pub fn run(args: &SubmitArgs) -> ExitCode {
    match runtime().block_on(submit(args)) {
        Ok(code) => code,
        Err(e) => {
            errln!("keel submit: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn submit(args: &SubmitArgs) -> Result<ExitCode, String> {
    let name = args.job.display().to_string();
    let source =
        std::fs::read_to_string(&args.job).map_err(|e| format!("{}: {e}", terminal_safe(&name)))?;
    let job = load_job(&name, &source, &Limits::default()).map_err(|e| e.to_string())?;
    let mut client = args
        .connect
        .client()
        .await
        .map_err(|e| terminal_safe(&e).into_owned())?;
    // Safe to retry on another coordinator: the engine answers a job it already has
    // (same name and spec) as a duplicate with the same id.
    let answer = client
        .submit_job(job_spec_to_proto(job.spec()))
        .await
        .map_err(|e| terminal_safe(&e.to_string()).into_owned())?;
    let submitted = answer.response;
    outln!("{}", submitted.job);
    if submitted.duplicate && answer.attempts > 1 {
        errln!(
            "keel submit: job {} was already recorded, by an earlier attempt of this submission (the coordinator changed while answering) or an earlier submission of the same job",
            submitted.job
        );
    } else if submitted.duplicate {
        errln!(
            "keel submit: the same job was already submitted as {}",
            submitted.job
        );
    }
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = wait(&mut client, submitted.job, submitted.tasks).await;
    errln!("job {}: {}", submitted.job, one_line(&outcome, 200));
    Ok(if outcome == "succeeded" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Polls the job until it ends, reconnecting through coordinator restarts and moving
/// to whichever coordinator leads.
async fn wait(client: &mut Client, job: u64, tasks: u32) -> String {
    let bar = ProgressBar::new(u64::from(tasks));
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} done  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    loop {
        match client.describe_job(job).await {
            Ok(view) => {
                let (done, counts) = counts(&view);
                bar.set_position(done);
                bar.set_message(counts);
                if let Some(status) = view.status.filter(|s| !s.outcome.is_empty()) {
                    bar.finish();
                    return status.outcome;
                }
            }
            Err(e) if e.code() == Some(tonic::Code::NotFound) => {
                bar.abandon();
                return format!("gone: {}", one_line(&e.to_string(), 200));
            }
            Err(e) => bar.set_message(format!(
                "waiting for the coordinator: {}",
                one_line(&e.to_string(), 200)
            )),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Finished tasks, and "state n" pairs for every state present.
fn counts(view: &DescribeJobResponse) -> (u64, String) {
    let mut by_state = BTreeMap::<&str, u32>::new();
    for t in &view.tasks {
        *by_state.entry(t.state.as_str()).or_default() += 1;
    }
    let done = ["succeeded", "failed", "skipped", "cancelled"]
        .iter()
        .map(|s| u64::from(by_state.get(s).copied().unwrap_or(0)))
        .sum();
    let text = by_state
        .iter()
        .map(|(state, n)| format!("{} {n}", terminal_safe(state)))
        .collect::<Vec<_>>()
        .join("  ");
    (done, text)
}
