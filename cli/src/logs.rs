//! `keel logs`: a task's output stream, the frames its attempts emitted, printed as
//! they are (raw to a pipe; text made safe on a terminal). `--follow` then has the
//! coordinator push new frames (a `TailStream`) until the task has ended and every
//! frame is printed.

use crate::connect::{runtime, ConnectArgs};
use crate::exit::{finish, Exit, Failure, EXIT_CODES};
use crate::output::{errln, stdout_bytes};
use crate::results::task_id;
use crate::status::job_arg;
use clap::Args;
use keel_grpc::client::{CallError, Client};
use keel_grpc::proto::read_stream_request::Attempts;
use keel_grpc::proto::tail_stream_request::Attempts as TailAttempts;
use keel_grpc::proto::{ReadStreamRequest, ReadStreamResponse, TailStreamRequest};
use keel_jobs::terminal_safe;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;
use tonic::Code;

/// How long `--follow` waits before opening a tail again after its coordinator left.
const REOPEN: Duration = Duration::from_millis(250);

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
    // Every frame stored now, a page at a time.
    loop {
        print_frames(&page);
        if page.frames.is_empty() {
            break;
        }
        request.from = page.next;
        page = client.read_stream(request.clone()).await?;
    }
    if !args.follow || page.finished {
        return Ok(Exit::Ok);
    }
    follow(&mut client, &request).await
}

/// Prints frames pushed by a tail from the request's cursor until the task has ended,
/// opening the tail again from where it stopped when its coordinator went away.
async fn follow(client: &mut Client, read: &ReadStreamRequest) -> Result<Exit, Failure> {
    let mut next = read.from;
    loop {
        let tail = TailStreamRequest {
            job: read.job,
            key: read.key.clone(),
            task: read.task,
            after: next.checked_sub(1),
            attempts: read.attempts.map(|a| match a {
                Attempts::Winning(w) => TailAttempts::Winning(w),
                Attempts::Attempt(n) => TailAttempts::Attempt(n),
            }),
        };
        let mut pages = client.tail_stream(tail).await?;
        loop {
            match pages.message().await {
                Ok(Some(page)) => {
                    print_frames(&page);
                    next = page.next;
                    if page.finished && page.frames.is_empty() {
                        return Ok(Exit::Ok);
                    }
                }
                Ok(None) => break,
                // The coordinator stopped serving, or its connection broke (a transport
                // error under the status): the next leader serves the tail.
                Err(status)
                    if status.code() == Code::Unavailable
                        || std::error::Error::source(&status).is_some() =>
                {
                    break
                }
                Err(status) => {
                    return Err(Failure::error(format!(
                        "the stream's tail failed: {}",
                        status.message()
                    )))
                }
            }
        }
        tokio::time::sleep(REOPEN).await;
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
