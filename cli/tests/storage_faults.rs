//! Real `keel serve` processes on a damaged embedded log: a log file cut short, with
//! pages overwritten, emptied, or deleted from a directory that held it, each stops the
//! server at once with a non-zero exit and a message naming the file; `--init` starts
//! a new log only where the old one is missing or empty.

mod process;

use process::{keel, Serve};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const LOG: &str = "keel-log.redb";

/// Runs `cmd` to its end, failing the test if it takes longer than 60 s.
fn run_bounded(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keel runs");
    let start = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("keel serve neither served nor exited within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// Starts `keel serve` on `data` expecting it to refuse; returns its stderr.
fn refused(data: &Path, extra: &[&str]) -> String {
    let out = run_bounded(
        keel()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(extra),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "keel serve started: {stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening on"),
        "a refused server never listens"
    );
    assert_ne!(
        out.status.code(),
        Some(101),
        "a panic is not a refusal: {stderr}"
    );
    stderr
}

/// A data directory whose log holds a submitted job, the server stopped by SIGKILL.
fn served_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = Serve::start(&data, None);
    let job = dir.path().join("job.toml");
    std::fs::write(&job, "[job]\nname = \"kept\"\n\n[[task]]\nid = \"a\"\n").unwrap();
    process::submit(&serve.url(), &job);
    drop(serve);
    dir
}

#[test]
fn a_damaged_log_stops_the_server_with_the_file_named() {
    let dir = served_dir();
    let data = dir.path().join("data");
    let file = data.join(LOG);
    let good = std::fs::read(&file).unwrap();

    std::fs::write(&file, &good[..good.len() / 2]).unwrap();
    let stderr = refused(&data, &[]);
    assert!(
        stderr.contains(&format!("keel serve: {} is damaged", file.display())),
        "{stderr}"
    );

    let mut overwritten = good.clone();
    for (i, b) in overwritten[4096..3 * 4096].iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    std::fs::write(&file, &overwritten).unwrap();
    let stderr = refused(&data, &[]);
    assert!(
        stderr.contains(&format!("{} is damaged", file.display())),
        "{stderr}"
    );
    // --init never replaces a log that holds something, damaged or not.
    let stderr = refused(&data, &["--init"]);
    assert!(stderr.contains("is damaged"), "{stderr}");

    std::fs::write(&file, &good).unwrap();
    let serve = Serve::start(&data, None);
    let job = dir.path().join("job.toml");
    std::fs::write(&job, "[job]\nname = \"next\"\n\n[[task]]\nid = \"a\"\n").unwrap();
    assert!(
        process::submit(&serve.url(), &job) > 1,
        "the restored log kept its job"
    );
}

#[test]
fn an_emptied_or_deleted_log_is_refused_until_init() {
    let dir = served_dir();
    let data = dir.path().join("data");
    let file = data.join(LOG);

    std::fs::write(&file, b"").unwrap();
    let stderr = refused(&data, &[]);
    assert!(
        stderr.contains(&format!(
            "keel serve: {} is empty (0 bytes)",
            file.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--init"), "{stderr}");

    std::fs::remove_file(&file).unwrap();
    let stderr = refused(&data, &[]);
    assert!(
        stderr.contains(&format!("keel serve: {} is missing", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("keel-log.created"), "{stderr}");
    assert!(!file.exists(), "a refused start creates no log");

    let serve = Serve::start_with(&data, None, &["--init".to_string()]);
    let job = dir.path().join("job.toml");
    std::fs::write(&job, "[job]\nname = \"fresh\"\n\n[[task]]\nid = \"a\"\n").unwrap();
    assert_eq!(process::submit(&serve.url(), &job), 1, "a new, empty log");
}
