//! `keel signal`: resumes a task suspended on a waitpoint.

use crate::connect::{runtime, ConnectArgs};
use crate::output::{errln, outln};
use crate::status::parse_job_id;
use clap::Args;
use keel_grpc::proto::{SignalTaskRequest, TaskView};
use keel_jobs::terminal_safe;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Args, Debug)]
pub struct SignalArgs {
    /// The job id `keel submit` printed (`12` or `j12`).
    pub job_id: String,
    /// The task: its key in the job spec, or its id (`7` or `t7`).
    pub task: String,
    /// The waitpoint the task is suspended on.
    pub waitpoint: String,
    /// Idempotency key: a signal sent again with the same key is delivered only once.
    /// Defaults to a key unique to this invocation.
    #[arg(long, value_name = "K")]
    pub key: Option<String>,
    /// Data for the resumed task: the text given, or with `@FILE` the bytes of FILE
    /// (`@-`: stdin).
    #[arg(long, value_name = "TEXT|@FILE")]
    pub payload: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub fn run(args: &SignalArgs) -> ExitCode {
    let Some(job) = parse_job_id(&args.job_id) else {
        errln!(
            "keel signal: \"{}\" is not a job id",
            terminal_safe(&args.job_id)
        );
        return ExitCode::FAILURE;
    };
    let key = args.key.clone().unwrap_or_else(fresh_key);
    let payload = match args.payload.as_deref().map(read_payload).transpose() {
        Ok(payload) => payload.unwrap_or_default(),
        Err(e) => {
            errln!("keel signal: {}", terminal_safe(&e));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime().block_on(async {
        let mut client = args.connect.client().await?;
        let view = client.describe_job(job).await.map_err(|e| e.to_string())?;
        let task = resolve_task(&view.tasks, &args.task)
            .ok_or_else(|| format!("job {job} has no task \"{}\"", terminal_safe(&args.task)))?;
        let request = SignalTaskRequest {
            job,
            task,
            waitpoint: args.waitpoint.clone(),
            idempotency_key: key.clone(),
            payload,
        };
        // A retry on another coordinator carries the same key, so it lands once.
        let answer = client
            .signal_task(request)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((task, answer))
    });
    match result {
        Ok((task, answer)) if answer.duplicate => {
            outln!(
                "t{task}: signal \"{}\" was already delivered",
                terminal_safe(&key)
            );
            ExitCode::SUCCESS
        }
        Ok((task, _)) => {
            outln!("t{task} resumed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            errln!("keel signal: {}", terminal_safe(&e));
            ExitCode::FAILURE
        }
    }
}

/// `--payload`: the text itself, or `@FILE`'s bytes (`@-`: stdin).
fn read_payload(arg: &str) -> Result<Vec<u8>, String> {
    let Some(path) = arg.strip_prefix('@') else {
        return Ok(arg.as_bytes().to_vec());
    };
    if path == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .map_err(|e| format!("--payload @-: reading stdin: {e}"))?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(|e| format!("--payload @{path}: {e}"))
}

/// A task named by its key (preferred: that is what specs and people use) or its id.
fn resolve_task(tasks: &[TaskView], name: &str) -> Option<u64> {
    if let Some(t) = tasks.iter().find(|t| t.key == name) {
        return Some(t.id);
    }
    let id: u64 = name.strip_prefix('t').unwrap_or(name).parse().ok()?;
    tasks.iter().any(|t| t.id == id).then_some(id)
}

/// Unique per invocation, so two deliberate signals are not taken for one redelivered.
fn fresh_key() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("keel-signal-{nanos}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: u64, key: &str) -> TaskView {
        TaskView {
            id,
            key: key.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_task_is_named_by_key_first_then_by_id() {
        let tasks = [task(7, "deploy"), task(8, "t7")];
        assert_eq!(resolve_task(&tasks, "deploy"), Some(7));
        assert_eq!(resolve_task(&tasks, "t7"), Some(8));
        assert_eq!(resolve_task(&tasks, "7"), Some(7));
        assert_eq!(resolve_task(&tasks, "t8"), Some(8));
        assert_eq!(resolve_task(&tasks, "9"), None);
        assert_eq!(resolve_task(&tasks, "build"), None);
    }
}
