//! `keel cancel`: ends a job. Its running attempts are revoked (their workers stop the
//! commands), its other unfinished tasks are cancelled, and the job ends `cancelled`.

use crate::connect::{runtime, ConnectArgs};
use crate::exit::{finish, Exit, Failure, EXIT_CODES};
use crate::output::outln;
use crate::status::job_arg;
use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct CancelArgs {
    /// The job id `keel submit` printed (`12` or `j12`).
    pub job_id: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub fn run(args: &CancelArgs) -> ExitCode {
    let result = match job_arg(&args.job_id) {
        Ok(job) => runtime().block_on(cancel(args, job)),
        Err(e) => Err(e),
    };
    finish("cancel", result)
}

async fn cancel(args: &CancelArgs, job: u64) -> Result<Exit, Failure> {
    let mut client = args.connect.connect().await?;
    // Repeating a cancel is harmless: a finished job answers `already_finished`.
    let answer = client.cancel_job(job).await?;
    if answer.already_finished {
        let view = client.describe_job(job).await?;
        let outcome = view.status.map(|s| s.outcome).unwrap_or_default();
        outln!(
            "job {job} had already finished ({}); nothing to cancel",
            crate::output::one_line(&outcome, 40)
        );
    } else {
        outln!("job {job} cancelled");
    }
    Ok(Exit::Ok)
}
