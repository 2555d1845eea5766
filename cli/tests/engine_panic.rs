//! Real processes (built with the `fault-injection` feature): a job that panics the
//! engine makes `keel serve` exit non-zero at once, naming the input's log offset; a
//! restart refuses to start, naming the same entry; `keel admin skip-input` drops it,
//! and the server starts again with every other job.

mod process;

use process::{describe, free_port, keel, submit, BOUND};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// A `keel serve` whose stderr is kept, for the message it stops with.
struct Server {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts a server armed with the injected panic; `Err` with its stderr if it
    /// exits before printing its address.
    fn start(data: &Path, port: u16) -> Result<Server, String> {
        let mut child = keel()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data)
            .arg("--inject-engine-panic")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("keel serve starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let lines = BufReader::new(child.stderr.take().expect("piped stderr"));
        let kept = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                eprintln!("serve: {line}");
                kept.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if line.starts_with("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        let mut server = Server { child, stderr };
        match rx.recv_timeout(BOUND) {
            Ok(()) => Ok(server),
            Err(_) => {
                let status = server.wait(Duration::from_secs(5));
                Err(format!("exited with {status:?}: {}", server.stderr()))
            }
        }
    }

    fn wait(&mut self, bound: Duration) -> std::process::ExitStatus {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the stderr reader catch up with the last lines.
                std::thread::sleep(Duration::from_millis(200));
                return status;
            }
            assert!(
                start.elapsed() < bound,
                "keel serve did not exit within {bound:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn job_file(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!("[job]\nname = \"{name}\"\n\n[[task]]\nid = \"a\"\n"),
    )
    .unwrap();
    path
}

/// The number after `marker` in `text`.
fn offset_after(text: &str, marker: &str) -> u64 {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in:\n{text}"));
    let digits: String = text[at + marker.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no offset after {marker:?} in:\n{text}"))
}

#[test]
fn an_engine_panic_stops_the_server_and_keel_admin_brings_the_partition_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = Server::start(&data, port).unwrap_or_else(|e| panic!("{e}"));
    let kept = submit(&url, &job_file(dir.path(), "kept"));

    let poisoned = keel()
        .arg("submit")
        .arg(job_file(dir.path(), "keel-injected-panic"))
        .args(["--coordinator", &url])
        .output()
        .expect("keel submit runs");
    assert!(!poisoned.status.success(), "the poisoned job was accepted");
    let status = server.wait(Duration::from_secs(15));
    assert!(!status.success(), "keel serve exited with {status}");
    let said = server.stderr();
    let offset = offset_after(
        &said,
        "the engine panicked applying the input at log offset ",
    );
    assert_eq!(
        offset, 1,
        "the kept job is entry 0, the poison entry 1:\n{said}"
    );
    assert!(said.contains("keel-injected-panic"), "{said}");

    // A restart refuses to start on the recorded input, naming it and the remedy.
    let refused = match Server::start(&data, port) {
        Ok(_) => panic!("a server started on a log whose entry {offset} panics the engine"),
        Err(stderr) => stderr,
    };
    assert_eq!(offset_after(&refused, "log entry "), offset, "{refused}");
    assert!(
        refused.contains(&format!("keel admin skip-input --offset {offset}")),
        "{refused}"
    );

    let skipped = keel()
        .args([
            "admin",
            "skip-input",
            "--offset",
            &offset.to_string(),
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .expect("keel admin runs");
    let out = String::from_utf8_lossy(&skipped.stdout);
    assert!(
        skipped.status.success(),
        "keel admin failed: {}",
        String::from_utf8_lossy(&skipped.stderr)
    );
    assert!(
        out.contains(&format!("skipped entry {offset}: a submission of 1 tasks")),
        "{out}"
    );

    let _server = Server::start(&data, port).unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let view = runtime.block_on(async { tokio::time::timeout(BOUND, describe(&url, kept)).await });
    let view = view.unwrap_or_else(|_| panic!("job {kept} was lost"));
    assert_eq!(view.tasks.len(), 1, "the kept job survived");
    let later = submit(&url, &job_file(dir.path(), "later"));
    assert!(later > kept, "job ids go on: {kept} then {later}");
}
