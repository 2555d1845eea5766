//! `keel output` and `keel result`: what tasks produced, read back. A task's output is
//! its winning attempt's (a zombie's never is); a job's result is the outputs of its
//! result tasks (the tasks nothing else in the job depends on).

use crate::connect::{runtime, ConnectArgs};
use crate::exit::{finish, Exit, Failure, EXIT_CODES};
use crate::output::{errln, out, stdout_bytes};
use crate::status::job_arg;
use base64::Engine as _;
use clap::{Args, ValueEnum};
use keel_grpc::client::{CallError, Client};
use keel_grpc::proto::{GetJobResultResponse, TaskOutput};
use keel_jobs::terminal_safe;
use serde_json::{json, Map, Value};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use tonic::Code;

#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct OutputArgs {
    /// The job id (`12` or `j12`).
    pub job_id: String,
    /// The task: its key in the job's spec, or its id (`t7`).
    pub task: String,
    /// Write the output to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// How `keel result` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ResultFormat {
    /// One result task: its output as it is; several: the JSON object.
    Auto,
    /// Always the JSON object: each result task's key to its output (a string when it is
    /// UTF-8, `{"base64": ...}` when not, null when it has none).
    Json,
}

#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct ResultArgs {
    /// The job id (`12` or `j12`).
    pub job_id: String,
    #[arg(long, value_enum, default_value_t = ResultFormat::Auto)]
    pub format: ResultFormat,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub fn run_output(args: &OutputArgs) -> ExitCode {
    let result = match job_arg(&args.job_id) {
        Ok(job) => runtime().block_on(output(args, job)),
        Err(e) => Err(e),
    };
    finish("output", result)
}

pub fn run_result(args: &ResultArgs) -> ExitCode {
    let result = match job_arg(&args.job_id) {
        Ok(job) => runtime().block_on(async {
            let mut client = args.connect.connect().await?;
            print_result(&mut client, job, args.format).await
        }),
        Err(e) => Err(e),
    };
    finish("result", result)
}

/// `t7` or `7` as a task id.
pub(crate) fn task_id(text: &str) -> Option<u64> {
    text.strip_prefix('t').unwrap_or(text).parse().ok()
}

async fn output(args: &OutputArgs, job: u64) -> Result<Exit, Failure> {
    let mut client = args.connect.connect().await?;
    let read = match client.task_output(job, &args.task, 0).await {
        Err(CallError::Status { status, .. })
            if status.code() == Code::NotFound && task_id(&args.task).is_some() =>
        {
            let id = task_id(&args.task).unwrap_or(0);
            client.task_output(job, "", id).await?
        }
        other => other?,
    };
    if !read.has_output {
        return Err(Failure::error(format!(
            "task {} of job {job} has no output: it is {} (only a succeeded task has one)",
            terminal_safe(&read.key),
            read.state
        )));
    }
    match &args.out {
        Some(path) => std::fs::write(path, &read.data).map_err(|e| {
            Failure::error(format!("writing the output to {}: {e}", path.display()))
        })?,
        None => write_data(&read.data)?,
    }
    Ok(Exit::Ok)
}

/// Raw bytes for a pipe or file; on a terminal, text escaped and binary refused.
fn write_data(data: &[u8]) -> Result<(), Failure> {
    if !std::io::stdout().is_terminal() {
        stdout_bytes(data);
        return Ok(());
    }
    match std::str::from_utf8(data) {
        Ok(text) => {
            out!("{}", terminal_safe(text));
            Ok(())
        }
        Err(_) => Err(Failure::error(format!(
            "the output is {} bytes of binary data; write it with --out FILE or to a pipe",
            data.len()
        ))),
    }
}

/// Prints job `job`'s result; the exit status says how the job ended. A job still
/// running has no result yet.
pub async fn print_result(
    client: &mut Client,
    job: u64,
    format: ResultFormat,
) -> Result<Exit, Failure> {
    let result = client.job_result(job).await?;
    let outcome = result.status.as_ref().map_or("", |s| s.outcome.as_str());
    if outcome.is_empty() {
        return Err(Failure::error(format!(
            "job {job} is still running; its result is ready when it ends (`keel status {job}`)"
        )));
    }
    let missing: Vec<&str> = result
        .tasks
        .iter()
        .filter(|t| !t.has_output)
        .map(|t| t.key.as_str())
        .collect();
    if !missing.is_empty() {
        errln!(
            "keel result: job {job} {outcome}; no output from {}",
            terminal_safe(&missing.join(", "))
        );
    }
    match (format, result.tasks.as_slice()) {
        (ResultFormat::Auto, [one]) if one.has_output => write_data(&one.data)?,
        (ResultFormat::Auto, [_]) => {}
        _ => out!("{}\n", result_document(&result)),
    }
    Ok(Exit::of_outcome(outcome))
}

/// The JSON object of a result: key to output.
pub fn result_document(result: &GetJobResultResponse) -> Value {
    let map: Map<String, Value> = result
        .tasks
        .iter()
        .map(|t| (t.key.clone(), output_value(t)))
        .collect();
    Value::Object(map)
}

fn output_value(t: &TaskOutput) -> Value {
    if !t.has_output {
        return Value::Null;
    }
    match std::str::from_utf8(&t.data) {
        Ok(text) => json!(text),
        Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(&t.data) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(key: &str, data: Option<&[u8]>) -> TaskOutput {
        TaskOutput {
            key: key.into(),
            has_output: data.is_some(),
            data: data.unwrap_or_default().to_vec(),
            complete: true,
            ..Default::default()
        }
    }

    #[test]
    fn the_result_document_maps_keys_to_text_base64_or_null() {
        let result = GetJobResultResponse {
            status: None,
            tasks: vec![
                task("text", Some(b"42\n")),
                task("binary", Some(&[0xff, 0x00])),
                task("none", None),
            ],
        };
        assert_eq!(
            result_document(&result).to_string(),
            r#"{"text":"42\n","binary":{"base64":"/wA="},"none":null}"#
        );
        assert_eq!(task_id("t7"), Some(7));
        assert_eq!(task_id("extract"), None);
    }
}
