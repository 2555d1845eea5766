//! `keel logs`: a task's output stream, the frames its attempts emitted, printed as
//! they are (raw to a pipe; text made safe on a terminal). `--follow` keeps reading
//! from the cursor until the task has ended and every frame is printed.

use crate::connect::{runtime, ConnectArgs};
use crate::exit::{finish, Exit, Failure, EXIT_CODES};
use crate::output::{errln, stdout_bytes};
use crate::results::task_id;
use crate::status::job_arg;
use clap::Args;
use keel_grpc::client::CallError;
use keel_grpc::proto::read_stream_request::Attempts;
use keel_grpc::proto::{ReadStreamRequest, ReadStreamResponse};
use keel_jobs::terminal_safe;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;
use tonic::Code;

/// How long `--follow` waits before asking again when no new frame came.
const POLL: Duration = Duration::from_millis(250);

#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct LogsArgs {
    /// The job id (`12` or `j12`).
    pub job_id: String,
    /// The task: its key in the job's spec, or its id (`t7`).
    pub task: String,
    /// Keep printing frames as the task emits them, until it has ended.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only this attempt's frames (from 1).
    #[arg(long, value_name = "N", conflicts_with = "winning")]
    pub attempt: Option<u32>,
    /// Only the frames of the attempt that completed the task.
    #[arg(long)]
    pub winning: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub fn run(args: &LogsArgs) -> ExitCode {
    let result = match job_arg(&args.job_id) {
        Ok(job) => runtime().block_on(logs(args, job)),
        Err(e) => Err(e),
    };
    finish("logs", result)
}

async fn logs(args: &LogsArgs, job: u64) -> Result<Exit, Failure> {
    let mut client = args.connect.connect().await?;
    let attempts = match (args.attempt, args.winning) {
        (Some(n), _) => Some(Attempts::Attempt(n)),
        (None, true) => Some(Attempts::Winning(true)),
        (None, false) => None,
    };
    let mut request = ReadStreamRequest {
        job,
        key: args.task.clone(),
        attempts,
        ..Default::default()
    };
    let mut page = match client.read_stream(request.clone()).await {
        Err(CallError::Status { status, .. })
            if status.code() == Code::NotFound && task_id(&args.task).is_some() =>
        {
            request.key.clear();
            request.task = task_id(&args.task).unwrap_or(0);
            client.read_stream(request.clone()).await?
        }
        other => other?,
    };
    if page.first_kept > 0 {
        errln!(
            "keel logs: the first {} frames were let go by the task's stream mode",
            page.first_kept
        );
    }
    loop {
        print_frames(&page);
        let caught_up = page.frames.is_empty();
        if caught_up && (!args.follow || page.finished) {
            return Ok(Exit::Ok);
        }
        if caught_up {
            tokio::time::sleep(POLL).await;
        }
        request.from = page.next;
        page = client.read_stream(request.clone()).await?;
    }
}

/// Raw bytes for a pipe or file; on a terminal, text with control characters escaped.
fn print_frames(page: &ReadStreamResponse) {
    let terminal = std::io::stdout().is_terminal();
    for f in &page.frames {
        if terminal {
            let text = String::from_utf8_lossy(&f.data);
            stdout_bytes(terminal_safe(&text).as_bytes());
        } else {
            stdout_bytes(&f.data);
        }
    }
}
