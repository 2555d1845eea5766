//! Real processes: every job in examples/ runs to success on one worker started with
//! exactly the `keel worker` command line the README shows (only its coordinator
//! address is this test's, and it gets its own `--state-dir`, as tests must).

mod process;

use process::{keel, run_keel, Proc, Serve, BOUND};
use std::path::{Path, PathBuf};
use std::process::Stdio;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The README's `keel worker ...` command, its continuation lines joined, without the
/// trailing `&`.
fn readme_worker_command() -> String {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let mut lines = readme
        .lines()
        .skip_while(|l| !l.starts_with("keel worker "));
    let mut command = String::new();
    for line in lines.by_ref() {
        match line.trim_end().strip_suffix('\\') {
            Some(more) => command.push_str(more),
            None => {
                command.push_str(line);
                break;
            }
        }
    }
    assert!(
        !command.is_empty(),
        "README.md shows no `keel worker` command"
    );
    command.trim().trim_end_matches('&').trim().to_string()
}

/// Splits a command line as `sh` does for plain words, '…' and "…" (no expansions).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                w.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

fn example_jobs() -> Vec<PathBuf> {
    let mut jobs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter(|p| std::fs::read_to_string(p).unwrap().contains("\n[job]\n"))
        .collect();
    jobs.sort();
    jobs
}

#[test]
fn the_readme_worker_command_splits_as_a_shell_would() {
    assert_eq!(
        shell_words(r#"keel worker --exec 'echo "$X"' --id "a b" c\ d"#),
        [
            "keel",
            "worker",
            "--exec",
            "echo \"$X\"",
            "--id",
            "a b",
            "c d"
        ]
    );
    let words = shell_words(&readme_worker_command());
    assert_eq!(&words[..2], ["keel", "worker"]);
    assert!(words.iter().any(|w| w == "--coordinator"));
}

#[test]
fn every_example_job_succeeds_with_the_readme_worker_command() {
    let jobs = example_jobs();
    assert_eq!(jobs.len(), 8, "example jobs: {jobs:?}");
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();

    let mut words = shell_words(&readme_worker_command());
    let at = words.iter().position(|w| w == "--coordinator").unwrap();
    words[at + 1] = url.clone();
    let child = keel()
        .args(&words[1..])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the README's worker starts");
    let _worker = Proc::of(child);
    let registered = || {
        let (_, out, _) = run_keel(&["workers", "--coordinator", &url, "--format", "json"]);
        serde_json::from_str::<serde_json::Value>(&out)
            .is_ok_and(|v| v["workers"].as_array().is_some_and(|w| !w.is_empty()))
    };
    let started = std::time::Instant::now();
    while !registered() {
        assert!(started.elapsed() < BOUND, "the worker never registered");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // All at once (two examples hold a task back a minute), then each followed to its
    // end: submitting the same spec again is the same job.
    let mut ids = Vec::new();
    for job in &jobs {
        let path = job.to_str().unwrap();
        let (code, out, err) = run_keel(&["submit", path, "--coordinator", &url]);
        assert_eq!(code, 0, "{path}: {err}");
        assert!(!err.contains("warning"), "{path}: {err}");
        ids.push(out.trim().to_string());
    }
    for (job, id) in jobs.iter().zip(&ids) {
        let path = job.to_str().unwrap();
        let wait = ["--wait", "--timeout", "5m"];
        let (code, out, err) =
            run_keel(&[&["submit", path, "--coordinator", &url][..], &wait].concat());
        assert_eq!((code, out.trim()), (0, id.as_str()), "{path}: {err}");
        assert!(
            err.contains(&format!("job {id}: succeeded")),
            "{path}: {err}"
        );
    }
}
