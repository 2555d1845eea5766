//! `keel submit`: reads a job spec file, checks it with keel-jobs (the same checks as
//! `keel plan`), submits it and prints the job id, warning when no live worker can run
//! some of it. With `--wait` it follows the job to its end and exits with a status
//! that says how it ended.

use crate::clock::now_ms;
use crate::connect::{runtime, ConnectArgs};
use crate::duration::{parse_duration, short};
use crate::exit::{finish, Exit, Failure, EXIT_CODES};
use crate::output::{errln, one_line, out, outln};
use crate::plan::Format;
use crate::results::{self, ResultFormat};
use crate::status::{outcome_exit, workers_of};
use crate::wait::{follow, End, Followed};
use crate::{explain, json, status};
use clap::Args;
use keel_grpc::client::Client;
use keel_grpc::job_spec_to_proto;
use keel_grpc::proto::JobSpec;
use keel_jobs::{load_job, terminal_safe, Limits};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// How a submitting command follows its job.
#[derive(Args, Debug, Clone)]
pub struct WaitArgs {
    /// Wait for the job to end: a progress bar on a terminal, otherwise a line on
    /// stderr every 5 s and whenever the task counts change. The exit status then says
    /// how the job ended.
    #[arg(long)]
    pub wait: bool,
    /// With --wait, stop waiting after this long (e.g. 30s, 5m, 1h) and exit with 8;
    /// the job keeps running.
    #[arg(long, value_name = "DURATION", requires = "wait", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// With --wait, print the job's result when it ends (as `keel result` does; in the
    /// JSON report, as its `result` object).
    #[arg(long, requires = "wait")]
    pub result: bool,
    /// Output format of the job id, or with --wait of the final report (JSON fields:
    /// cli/README.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct SubmitArgs {
    /// Job spec file (TOML), as `keel plan` reads it.
    pub job: PathBuf,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub follow: WaitArgs,
}

pub fn run(args: &SubmitArgs) -> ExitCode {
    finish("submit", runtime().block_on(submit(args)))
}

async fn submit(args: &SubmitArgs) -> Result<Exit, Failure> {
    let name = args.job.display().to_string();
    let source =
        std::fs::read_to_string(&args.job).map_err(|e| Failure::error(format!("{name}: {e}")))?;
    let job = load_job(&name, &source, &Limits::default()).map_err(|e| e.to_string())?;
    let mut client = args.connect.connect().await?;
    send(
        &mut client,
        job_spec_to_proto(job.spec()),
        &args.follow,
        "submit",
    )
    .await
}

/// Submits `spec`, prints its id (or, with JSON and no --wait, a small document), warns
/// about work no live worker can take, and with --wait follows the job to its end.
pub async fn send(
    client: &mut Client,
    spec: JobSpec,
    follow_args: &WaitArgs,
    command: &str,
) -> Result<Exit, Failure> {
    // Safe to retry on another coordinator: the engine answers a job it already has
    // (same name and spec) as a duplicate with the same id.
    let answer = client.submit_job(spec.clone()).await?;
    let taken = Taken {
        job: answer.response.job,
        tasks: answer.response.tasks,
        duplicate: answer.response.duplicate,
        attempts: answer.attempts,
    };
    report_taken(client, &spec, taken, follow_args, command).await
}

/// A job the coordinator holds for a submitting command: made now, or found when
/// `duplicate`; `attempts` counts the coordinators asked.
pub struct Taken {
    pub job: u64,
    pub tasks: u32,
    pub duplicate: bool,
    pub attempts: u32,
}

/// Prints the id of a job a command submitted as `spec` (or, with JSON and no --wait,
/// a small document), warns about work no live worker can take, and with --wait
/// follows the job to its end.
pub async fn report_taken(
    client: &mut Client,
    spec: &JobSpec,
    taken: Taken,
    follow_args: &WaitArgs,
    command: &str,
) -> Result<Exit, Failure> {
    let job = taken.job;
    if follow_args.format == Format::Text {
        outln!("{job}");
    }
    if taken.duplicate && taken.attempts > 1 {
        errln!(
            "keel {command}: job {job} was already recorded, by an earlier attempt of this submission (the coordinator changed while answering) or an earlier submission of the same job"
        );
    } else if taken.duplicate {
        errln!("keel {command}: the same job was already submitted as {job}");
    }
    if let Some(workers) = workers_of(client).await {
        for warning in explain::submit_warnings(spec, &workers) {
            errln!("keel {command}: warning: {warning}");
        }
    }
    let document = |status: serde_json::Value, state: serde_json::Value, timed_out: bool| {
        json!({
            "job": job,
            "name": spec.name,
            "tasks": taken.tasks,
            "duplicate": taken.duplicate,
            "state": state,
            "timed_out": timed_out,
            "status": status,
        })
    };
    if !follow_args.wait {
        if follow_args.format == Format::Json {
            out!(
                "{}",
                json::document(&document(json!(null), json!(null), false))
            );
        }
        return Ok(Exit::Ok);
    }
    let followed = follow(client, job, taken.tasks, follow_args.timeout).await;
    let exit = report_end(command, job, &followed, follow_args.timeout);
    let ended = matches!(followed.end, End::Finished(_));
    if follow_args.result && ended && follow_args.format == Format::Text {
        results::print_result(client, job, ResultFormat::Auto).await?;
    }
    if follow_args.format == Format::Json {
        let status = followed.view.as_ref().map_or(json!(null), |view| {
            let why = status::explanations(view, None, now_ms());
            json::status(view, &why)
        });
        let state = followed
            .view
            .as_ref()
            .and_then(|v| v.status.as_ref())
            .map_or(json!(null), |s| json!(json::state_word(s)));
        let timed_out = matches!(followed.end, End::TimedOut | End::Unreachable(_));
        let mut report = document(status, state, timed_out);
        if follow_args.result && ended {
            let result = client.job_result(job).await?;
            report["result"] = results::result_document(&result);
        }
        out!("{}", json::document(&report));
    }
    Ok(exit)
}

/// Says on stderr how following the job ended and returns the exit status for it.
fn report_end(command: &str, job: u64, followed: &Followed, timeout: Option<Duration>) -> Exit {
    let waited = timeout.map_or_else(String::new, |t| short(t.as_millis() as u64));
    match &followed.end {
        End::Finished(outcome) => {
            errln!("job {job}: {}", one_line(outcome, 200));
            followed.view.as_ref().map_or(Exit::Failed, outcome_exit)
        }
        End::Gone(why) => {
            errln!("keel {command}: job {job} is gone: {why}");
            Exit::NotFound
        }
        End::TimedOut => {
            errln!(
                "keel {command}: stopped waiting after {waited}; job {job} keeps running (`keel status {job}`)"
            );
            Exit::TimedOut
        }
        End::Unreachable(error) => {
            errln!(
                "keel {command}: stopped waiting after {waited} without reaching the coordinator ({}); job {job} may still be running",
                terminal_safe(error)
            );
            Exit::Unreachable
        }
    }
}
