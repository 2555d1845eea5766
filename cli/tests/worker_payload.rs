//! Real processes: how `keel worker --exec` hands a task its payload and reports its
//! failures. A 1 MiB payload with NUL bytes arrives whole on stdin and in
//! `KEEL_PAYLOAD_FILE`; a command that closes its stdin unread does not upset the
//! worker; a command that cannot be launched fails for good at once; a failure is
//! reported with the end of stderr, not its beginning.

#![cfg(unix)]

mod process;

use keel_grpc::proto::{DescribeJobResponse, TaskView};
use process::{submit, until, worker_exec, Proc, Serve};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The engine's largest payload: exactly 1 MiB, with NULs, newlines and quotes.
fn big_payload() -> Vec<u8> {
    let pattern = b"keel\0payload \"quoted\" \\ line\n\0\0";
    pattern.iter().copied().cycle().take(1 << 20).collect()
}

/// A TOML basic string holding `bytes` (ASCII here), every byte a TOML may not hold raw
/// escaped.
fn toml_string(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b if b < 0x20 || b == 0x7f => out.push_str(&format!("\\u{b:04X}")),
            b => out.push(char::from(b)),
        }
    }
    out.push('"');
    out
}

fn job_file(dir: &Path, name: &str, tasks: &[(&str, &[u8])]) -> PathBuf {
    let mut toml = format!("[job]\nname = \"{name}\"\n");
    for (id, data) in tasks {
        toml.push_str(&format!(
            "\n[[task]]\nid = \"{id}\"\ndata = {}\n",
            toml_string(data)
        ));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    path
}

async fn ended(url: &str, job: u64) -> DescribeJobResponse {
    until(url, job, "the job ending", |v| {
        v.status.as_ref().is_some_and(|s| !s.outcome.is_empty())
    })
    .await
}

fn task<'a>(view: &'a DescribeJobResponse, key: &str) -> &'a TaskView {
    view.tasks.iter().find(|t| t.key == key).expect("the task")
}

fn outcome(view: &DescribeJobResponse) -> &str {
    &view.status.as_ref().unwrap().outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_mib_payload_with_nul_bytes_arrives_whole_on_stdin_and_in_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    // `read` copies stdin and checks it against the file; `shut` closes stdin unread.
    let exec = format!(
        r#"o={out}/$KEEL_TASK_ID; case "$(head -c 4 "$KEEL_PAYLOAD_FILE")" in
keel) cat > "$o.stdin" && cmp -s "$o.stdin" "$KEEL_PAYLOAD_FILE" && cp "$KEEL_PAYLOAD_FILE" "$o.file" && echo "${{KEEL_PAYLOAD+set}}" > "$o.env" ;;
*) exec 0<&-; echo closed > "$o.closed" ;;
esac"#,
        out = out.display()
    );
    let _worker = worker_exec(&dir.path().join("state"), &url, "w1", &exec, &[]);
    let payload = big_payload();
    let unread = vec![b'u'; 1 << 20];
    let job = submit(
        &url,
        &job_file(dir.path(), "big", &[("read", &payload), ("shut", &unread)]),
    );
    let view = ended(&url, job).await;
    assert_eq!(outcome(&view), "succeeded", "{:?}", view.tasks);
    let id = task(&view, "read").id;
    assert_eq!(
        std::fs::read(out.join(format!("{id}.stdin"))).unwrap(),
        payload
    );
    assert_eq!(
        std::fs::read(out.join(format!("{id}.file"))).unwrap(),
        payload
    );
    // Too large and not NUL-free: not in the environment.
    assert_eq!(
        std::fs::read_to_string(out.join(format!("{id}.env"))).unwrap(),
        "\n"
    );
    let shut = task(&view, "shut").id;
    assert!(out.join(format!("{shut}.closed")).exists());
    assert_eq!(task(&view, "shut").attempt, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_text_payload_is_also_in_keel_payload() {
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen");
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let exec = format!("printf %s \"$KEEL_PAYLOAD\" > {}", seen.display());
    let _worker = worker_exec(&dir.path().join("state"), &url, "w1", &exec, &[]);
    let job = submit(
        &url,
        &job_file(dir.path(), "small", &[("a", b"hello world")]),
    );
    assert_eq!(outcome(&ended(&url, job).await), "succeeded");
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "hello world");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_cannot_be_launched_fails_for_good_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    // No `sh` on this PATH.
    let child = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args([
            "worker",
            "--coordinator",
            &url,
            "--id",
            "w1",
            "--exec",
            "true",
        ])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("PATH", dir.path().join("empty"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let _worker = Proc::of(child);
    let job = submit(&url, &job_file(dir.path(), "nosh", &[("a", b"x")]));
    let view = ended(&url, job).await;
    assert_eq!(outcome(&view), "failed");
    let a = task(&view, "a");
    assert_eq!(a.attempt, 1, "a launch failure was retried: {a:?}");
    assert!(
        a.detail.starts_with("launching sh -c \"true\": "),
        "{}",
        a.detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_reported_with_the_end_of_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let exec = "i=0; while [ $i -lt 3000 ]; do echo \"noise line $i of a long build log\" >&2; \
                i=$((i+1)); done; echo 'the real error' >&2; exit 3";
    let _worker = worker_exec(&dir.path().join("state"), &url, "w1", exec, &[]);
    let spec = "[job]\nname = \"noisy\"\n\n[[task]]\nid = \"a\"\ndata = \"x\"\n\
                retry = { max_attempts = 1 }\n";
    let path = dir.path().join("noisy.toml");
    std::fs::write(&path, spec).unwrap();
    let job = submit(&url, &path);
    let view = ended(&url, job).await;
    let detail = &task(&view, "a").detail;
    assert!(detail.starts_with("exit status: 3: …"), "{detail}");
    assert!(
        detail.ends_with("noise line 2999 of a long build log\nthe real error"),
        "{detail}"
    );
    assert!(detail.len() <= 4096 + 32, "{} bytes", detail.len());
    let table = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(["status", &job.to_string(), "--coordinator", &url])
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    let row = table
        .lines()
        .find(|l| l.starts_with("a "))
        .expect("a task row, by key");
    assert!(row.contains("exit status: 3: …"), "{table}");
    // Job, its times, the header, the task and its attempt: one line each.
    assert_eq!(table.lines().count(), 5, "{table}");
}
