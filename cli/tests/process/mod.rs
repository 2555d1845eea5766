//! Real `keel` processes for tests: each child is killed when its guard drops, even if
//! the test panics; servers listen on free loopback ports; every wait is bounded.

#![allow(dead_code)]

use keel_grpc::client::ClientOptions;
use keel_grpc::proto::{DescribeJobRequest, DescribeJobResponse};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub mod logged;

/// How long any one awaited condition may take before the test fails.
pub const BOUND: Duration = Duration::from_secs(90);

pub struct Proc {
    child: Option<Child>,
    /// A directory that lives as long as the process (a worker's state directory).
    _dir: Option<tempfile::TempDir>,
}

impl Proc {
    /// Takes charge of `child`: it is killed when the guard drops.
    pub fn of(child: Child) -> Proc {
        Proc {
            child: Some(child),
            _dir: None,
        }
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` (e.g. "TERM") without waiting for the process to exit.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status()
                .expect("kill runs");
            assert!(status.success(), "kill -{signal} failed");
        }
    }

    /// Waits for the process to exit by itself, failing the test after `bound`.
    pub fn wait_exit(&mut self, bound: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("a running process");
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                start.elapsed() < bound,
                "the process did not exit within {bound:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process has not exited (a stopped process runs).
    pub fn running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL: no drain, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn keel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keel"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `keel serve` process on a fixed port, restartable on the same log.
pub struct Serve {
    proc: Proc,
    pub port: u16,
    data_dir: PathBuf,
    valkey: Option<String>,
    extra: Vec<String>,
}

impl Serve {
    pub fn start(data_dir: &Path, valkey: Option<String>) -> Serve {
        Serve::start_with(data_dir, valkey, &[])
    }

    /// [`Serve::start`] with more `keel serve` options.
    pub fn start_with(data_dir: &Path, valkey: Option<String>, extra: &[String]) -> Serve {
        let port = free_port();
        let proc = spawn_serve(port, data_dir, valkey.as_deref(), extra);
        Serve {
            proc,
            port,
            data_dir: data_dir.to_owned(),
            valkey,
            extra: extra.to_vec(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends `signal` (e.g. "STOP", "CONT") to the server process.
    pub fn signal(&self, signal: &str) {
        self.proc.signal(signal);
    }

    /// SIGKILL, leaving the port closed until [`Serve::restart`].
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts again on the same port and log.
    pub fn restart(&mut self) {
        self.proc = spawn_serve(
            self.port,
            &self.data_dir,
            self.valkey.as_deref(),
            &self.extra,
        );
    }

    /// SIGKILL, then start again on the same port and log.
    pub fn kill_and_restart(&mut self) {
        self.proc.kill();
        self.proc = spawn_serve(
            self.port,
            &self.data_dir,
            self.valkey.as_deref(),
            &self.extra,
        );
    }
}

fn spawn_serve(port: u16, data_dir: &Path, valkey: Option<&str>, extra: &[String]) -> Proc {
    let mut cmd = keel();
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--liveness-timeout-ms", "2000", "--lease-ttl-ms", "4000"])
        .args(["--grant-ttl-ms", "2000"]);
    if let Some(url) = valkey {
        cmd.args(["--valkey", url]);
    }
    cmd.args(extra);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("keel serve starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let proc = Proc::of(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("listening on") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(BOUND)
        .expect("keel serve printed its address");
    proc
}

/// A `keel worker` running each task's payload as a shell script.
pub fn worker(url: &str, id: &str, concurrency: u32) -> Proc {
    worker_with(url, id, &["--concurrency", &concurrency.to_string()])
}

/// [`worker`] with more `keel worker` options. Each worker gets its own state directory
/// (lock files), so tests running at once may use the same ids.
pub fn worker_with(url: &str, id: &str, options: &[&str]) -> Proc {
    let dir = tempfile::tempdir().expect("a state directory");
    let mut proc = worker_in(dir.path(), url, id, options);
    proc._dir = Some(dir);
    proc
}

/// [`worker_with`] on a given state directory: a worker restarted on the same one waits
/// for the commands of its previous instance.
pub fn worker_in(state: &Path, url: &str, id: &str, options: &[&str]) -> Proc {
    worker_exec(state, url, id, "sh", options)
}

/// A `keel worker` running `exec` per task, on state directory `state`.
pub fn worker_exec(state: &Path, url: &str, id: &str, exec: &str, options: &[&str]) -> Proc {
    let child = keel()
        .args(["worker", "--coordinator", url, "--id", id, "--exec", exec])
        .arg("--state-dir")
        .arg(state)
        .args(options)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("keel worker starts");
    Proc::of(child)
}

/// A `keel worker` whose stderr is read line by line into the returned channel, on its
/// own state directory.
pub fn worker_logged(
    url: &str,
    id: &str,
    exec: &str,
    options: &[&str],
) -> (Proc, mpsc::Receiver<String>) {
    let dir = tempfile::tempdir().expect("a state directory");
    let mut child = keel()
        .args(["worker", "--coordinator", url, "--id", id, "--exec", exec])
        .arg("--state-dir")
        .arg(dir.path())
        .args(options)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keel worker starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut proc = Proc::of(child);
    proc._dir = Some(dir);
    (proc, rx)
}

/// Runs `keel` with `args` and returns its exit code, stdout and stderr.
pub fn run_keel(args: &[&str]) -> (i32, String, String) {
    let out = keel().args(args).output().expect("keel runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until `keel workers` lists every worker in `ids`: a worker process is spawned
/// before it has registered, and what a submit warns about depends on who has.
pub fn until_workers(url: &str, ids: &[&str]) {
    let listed = || {
        let (_, out, _) = run_keel(&["workers", "--coordinator", url, "--format", "json"]);
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let workers = doc["workers"].as_array().cloned().unwrap_or_default();
        ids.iter().all(|id| workers.iter().any(|w| w["id"] == *id))
    };
    let started = std::time::Instant::now();
    while !listed() {
        assert!(
            started.elapsed() < BOUND,
            "workers {ids:?} never registered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes a job spec file named `name` in `dir` and returns its path.
pub fn job_file(dir: &Path, name: &str, toml: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml).expect("the job file is written");
    path
}

/// Runs `keel submit` and returns the job id it printed.
pub fn submit(url: &str, job_file: &Path) -> u64 {
    let out = keel()
        .arg("submit")
        .arg(job_file)
        .args(["--coordinator", url])
        .output()
        .expect("keel submit runs");
    assert!(
        out.status.success(),
        "keel submit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("keel submit printed a job id")
}

/// Describes a job, retrying through connection failures (a restarting coordinator).
pub async fn describe(url: &str, job: u64) -> DescribeJobResponse {
    let options = ClientOptions::new(url);
    loop {
        if let Ok(mut jobs) = options.jobs().await {
            if let Ok(view) = jobs.describe_job(DescribeJobRequest { job }).await {
                return view.into_inner();
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls the job until `done` holds for it, failing the test after [`BOUND`].
pub async fn until(
    url: &str,
    job: u64,
    what: &str,
    done: impl Fn(&DescribeJobResponse) -> bool,
) -> DescribeJobResponse {
    let poll = async {
        loop {
            let view = describe(url, job).await;
            if done(&view) {
                return view;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(BOUND, poll)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {BOUND:?}"))
}
