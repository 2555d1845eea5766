//! `keel worker`: serves tasks by running a shell command per task. The task's ids and
//! attempt are in environment variables and its payload on stdin and in a file; exit
//! code 0 completes the task with the command's stdout as output, anything else fails
//! it with the end of its stderr. Each command leads its own process group: when the
//! attempt is revoked, times out or is abandoned at shutdown, or when the command
//! exits, every process left in the group gets SIGTERM and, after `--kill-grace-ms`,
//! SIGKILL. When the worker dies, its commands die with it: each command's shell gets
//! SIGKILL from the kernel and the rest of its group from the worker's reaper, and a
//! worker restarted with the same id registers only once they are dead.

use crate::connect::{init_tracing, terminated, ConnectArgs};
use crate::log_json;
use crate::process_group;
use crate::worker_exec::{run_command, Exec};
use crate::worker_log::{self, LogFormat, TaskLog};
use crate::worker_reaper::Reaper;
use crate::worker_state::{self, WorkerFiles};
use clap::Args;
use keel_engine::ALL_LANES;
use keel_grpc::client::ClientOptions;
use keel_grpc::worker::{Summary, Task, Worker, WorkerConfig};
use keel_jobs::terminal_safe;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// A capability this worker offers; repeat for several.
    #[arg(long = "capability", value_name = "CAP")]
    pub capabilities: Vec<String>,
    /// A lane this worker serves, in preference order; repeat for several. Without
    /// --lane or --all-lanes it serves the lane "default".
    #[arg(long = "lane", value_name = "LANE")]
    pub lanes: Vec<String>,
    /// Serve every lane, including lanes first used after the worker started.
    #[arg(long, conflicts_with = "lanes")]
    pub all_lanes: bool,
    /// How task starts and ends are logged on stderr: a text line each, or one JSON
    /// object per line.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Tasks run at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub concurrency: u32,
    /// Shell command run per task (with `sh -c`).
    #[arg(long, value_name = "CMD")]
    pub exec: String,
    /// This worker's name; defaults to host and process id.
    #[arg(long, value_name = "NAME")]
    pub id: Option<String>,
    /// On SIGINT/SIGTERM, how long running commands may take to finish before they are
    /// stopped.
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    pub drain_timeout_ms: u64,
    /// How long the coordinator may take to open a session or answer a command before
    /// the worker treats the connection as broken and connects again.
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub answer_timeout_ms: u64,
    /// Between SIGTERM and SIGKILL when a command's process group is stopped.
    #[arg(long, value_name = "MS", default_value_t = 3_000)]
    pub kill_grace_ms: u64,
    /// Most bytes a command may write to stdout (the task's output). A command that
    /// writes more fails for good, saying so: an output is never cut short.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_output_bytes: usize,
    /// Append each command's stderr, line by line, to its task's output stream while
    /// it runs (`keel logs -f` follows it). The lines count against the job's output
    /// bytes as the task's `stream` setting keeps them; stderr's end is still the
    /// error of a failed attempt.
    #[arg(long)]
    pub stream_stderr: bool,
    /// For a task that reads other tasks' streams (`stream_from`), whose frames are its
    /// command's stdin: acknowledge them once written, so a bounded edge makes room and
    /// a retry resumes after them. Without it nothing is acknowledged and every attempt
    /// reads the producers' latest attempts from their start.
    #[arg(long)]
    pub ack_stdin: bool,
    /// Where this worker keeps its lock files and payload files (default:
    /// $XDG_RUNTIME_DIR/keel, else keel-<uid> in the system temp directory). A worker
    /// restarted with the same --id must use the same directory to wait for the
    /// commands of its previous instance.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

pub fn run(args: &WorkerArgs) -> ExitCode {
    match args.log_format {
        LogFormat::Text => init_tracing(),
        LogFormat::Json => log_json::init(),
    }
    match serve(args) {
        Ok(summary) => {
            worker_log::stopped(args.log_format, &summary);
            ExitCode::SUCCESS
        }
        Err(e) => {
            worker_log::failed(args.log_format, &e);
            ExitCode::FAILURE
        }
    }
}

/// Takes this worker id's locks, starts the reaper, serves until stopped, and stops
/// every command before returning.
fn serve(args: &WorkerArgs) -> Result<Summary, String> {
    let client = args.connect.options()?;
    let id = args.id.clone().unwrap_or_else(default_id);
    let state = worker_state::state_dir(args.state_dir.as_deref())?;
    let files = WorkerFiles::new(&state, &id);
    let Some(_live) = worker_state::try_lock(&files.worker_lock)? else {
        return Err(format!(
            "another keel worker with id \"{}\" is running on this host (it holds {}); \
             two live workers cannot share an id",
            terminal_safe(&id),
            files.worker_lock.display()
        ));
    };
    // Before registering: a restart waits here until its previous instance's
    // commands are dead.
    let mut reaper = Reaper::start(&files, &id)?;
    worker_state::clear_payloads(&files.payloads)?;
    let config = worker_config(args, client, id);
    let exec = Arc::new(Exec {
        command: args.exec.clone(),
        payloads: files.payloads.clone(),
        grace: Duration::from_millis(args.kill_grace_ms),
        max_output: args.max_output_bytes,
        stream_stderr: args.stream_stderr,
        ack_stdin: args.ack_stdin,
    });
    let log_format = args.log_format;
    let handler = move |task: Task| {
        let exec = exec.clone();
        async move {
            // Dropped with the future when the attempt is revoked: logged as such.
            let log = TaskLog::start(log_format, &task);
            let outcome = run_command(&exec, &task).await;
            log.ended(&outcome);
            outcome
        }
    };
    let mut lost = None;
    let stopped = async {
        tokio::select! {
            _ = terminated() => {}
            why = reaper.lost() => {
                tracing::error!("{why}");
                lost = Some(why);
            }
        }
    };
    // Commands are spawned on this thread, which lives as long as the process: the
    // kernel delivers their parent-death signal when the spawning thread ends.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let result = runtime.block_on(Worker::new(config).run(handler, stopped));
    // Every handler still running goes with the runtime; their groups are stopped next.
    drop(runtime);
    process_group::finish_all();
    if reaper.finish() && args.id.is_none() {
        // A default id names this process only: nobody will take its files again.
        files.remove();
    }
    let summary = result.map_err(|e| e.to_string())?;
    match lost {
        Some(why) => Err(why),
        None => Ok(summary),
    }
}

/// The worker's registration and timeouts as the flags set them; logs that it started.
fn worker_config(args: &WorkerArgs, client: ClientOptions, id: String) -> WorkerConfig {
    let mut config = WorkerConfig::new(client, id, args.concurrency);
    config.capabilities = args.capabilities.clone();
    config.lanes = if args.all_lanes {
        vec![ALL_LANES.to_string()]
    } else {
        args.lanes.clone()
    };
    worker_log::started(
        args.log_format,
        &config.worker_id,
        &config.lanes,
        &config.capabilities,
        args.concurrency,
    );
    config.drain_timeout = Duration::from_millis(args.drain_timeout_ms);
    config.answer_timeout = Duration::from_millis(args.answer_timeout_ms);
    config
}

fn default_id() -> String {
    format!("{}-{}", keel_coordinator::host_name(), std::process::id())
}
