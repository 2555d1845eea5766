//! Real processes: a `keel` command whose stdout (or stderr) is a pipe nobody reads any
//! more, as in `keel status 7 | head`, ends quietly: status 0 or 141 (what a shell
//! reports for a process ended by SIGPIPE), never a panic (status 101 and `failed
//! printing to stdout`).

#![cfg(unix)]

mod process;

use process::{keel, submit, Proc, Serve, BOUND};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/etl-chain.toml");
const SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/dag_groups.toml");

/// Runs `command` with stdout (or stderr) a pipe whose reader is already gone, and
/// checks it ended quietly.
fn ends_quietly(mut command: Command, closed: Stream, what: &str) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    match closed {
        Stream::Stdout => command.stdout(writer).stderr(Stdio::piped()),
        Stream::Stderr => command.stderr(writer).stdout(Stdio::null()),
    };
    let out = command.output().expect("keel runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{what}: {stderr}"
    );
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 141)) || (closed == Stream::Stderr && code == Some(1)),
        "{what} exited with {}; stderr: {stderr}",
        out.status
    );
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

#[test]
fn offline_commands_end_quietly_on_a_closed_stdout() {
    let mut plan = keel();
    plan.args(["plan", EXAMPLE]);
    ends_quietly(plan, Stream::Stdout, "keel plan");
    let mut json = keel();
    json.args(["plan", EXAMPLE, "--format", "json"]);
    ends_quietly(json, Stream::Stdout, "keel plan --format json");
    let mut sim = keel();
    sim.args(["sim", "run", SCENARIO]);
    ends_quietly(sim, Stream::Stdout, "keel sim run");
    let mut show = keel();
    show.args(["sim", "show", "3"]);
    ends_quietly(show, Stream::Stdout, "keel sim show");
    let mut help = keel();
    help.arg("--help");
    ends_quietly(help, Stream::Stdout, "keel --help");
}

#[test]
fn errors_end_quietly_on_a_closed_stderr() {
    let mut plan = keel();
    plan.args(["plan", "/nonexistent/job.toml"]);
    ends_quietly(plan, Stream::Stderr, "keel plan of a missing file");
    let mut status = keel();
    status.args(["status", "nope", "--coordinator", "http://127.0.0.1:9"]);
    ends_quietly(status, Stream::Stderr, "keel status of a bad id");
}

#[test]
fn client_commands_end_quietly_on_a_closed_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let job = submit(&url, EXAMPLE.as_ref());
    let mut status = keel();
    status.args(["status", &job.to_string(), "--coordinator", &url]);
    ends_quietly(status, Stream::Stdout, "keel status");
    for args in [
        &["jobs"][..],
        &["jobs", "--format", "json"],
        &["workers"],
        &["workers", "--format", "json"],
        &["status", &job.to_string(), "--format", "json"],
    ] {
        let mut command = keel();
        command.args(args).args(["--coordinator", &url]);
        ends_quietly(command, Stream::Stdout, &format!("keel {}", args.join(" ")));
    }
    // The job id is the first thing written; nobody is left to read it.
    let spec = dir.path().join("one.toml");
    std::fs::write(&spec, "[job]\nname = \"one\"\n\n[[task]]\nid = \"a\"\n").unwrap();
    let mut wait = keel();
    wait.arg("submit")
        .arg(&spec)
        .args(["--coordinator", &url, "--wait"]);
    ends_quietly(wait, Stream::Stdout, "keel submit --wait");
}

/// A server whose log reader went away (`keel serve 2>&1 | head`) keeps serving: log
/// lines it cannot write are dropped.
#[test]
fn a_server_keeps_serving_with_a_closed_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let mut child = keel()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(writer)
        .spawn()
        .expect("keel serve starts");
    let stdout = child.stdout.take().unwrap();
    let mut serve = Proc::of(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(BOUND).expect("keel serve printed a line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let spec = dir.path().join("one.toml");
    std::fs::write(&spec, "[job]\nname = \"one\"\n\n[[task]]\nid = \"a\"\n").unwrap();
    submit(&url, &spec);
    serve.signal("TERM");
    let status = serve.wait_exit(BOUND);
    assert!(status.success(), "keel serve exited with {status}");
}
