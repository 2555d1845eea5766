//! Real processes: `keel retry` submits what did not succeed as a new job linked to the
//! old one (succeeded tasks do not run again), and `keel serve --retention` decides how
//! long a finished job stays queryable, while its name can be taken by a new spec once
//! it has finished.

mod process;

use process::{job_file, run_keel, worker_with, Serve};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn runs(dir: &Path, key: &str) -> usize {
    std::fs::read_to_string(dir.join(key))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// extract -> transform -> load, plus an independent side task. transform fails until
/// the file `fixed` exists. Each task appends a line to runs/<key> when it runs.
fn etl(dir: &Path) -> std::path::PathBuf {
    let runs = dir.join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let record = |key: &str| format!("echo x >> {}/{key}", runs.display());
    let fixed = dir.join("fixed");
    let toml = format!(
        "[job]\nname = \"etl\"\n\n[defaults]\nretry = {{ max_attempts = 1 }}\n\n\
         [[task]]\nid = \"extract\"\ncommand = '{}'\n\n\
         [[task]]\nid = \"transform\"\ncommand = '{}; test -f {}'\ndeps = [\"extract\"]\n\n\
         [[task]]\nid = \"load\"\ncommand = '{}'\ndeps = [\"transform\"]\n\n\
         [[task]]\nid = \"side\"\ncommand = '{}'\n",
        record("extract"),
        record("transform"),
        fixed.display(),
        record("load"),
        record("side"),
    );
    job_file(dir, "etl", &toml)
}

#[test]
fn retry_resubmits_what_did_not_succeed_as_a_linked_job() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let c = ["--coordinator", url.as_str()];
    let _w = worker_with(&url, "w1", &["--concurrency", "2"]);
    let spec = etl(dir.path());
    let (code, out, err) =
        run_keel(&[&["submit", spec.to_str().unwrap(), "--wait"][..], &c].concat());
    assert_eq!(code, 3, "transform fails: {err}");
    let old = out.trim().to_string();
    let runs_dir = dir.path().join("runs");
    assert_eq!(
        (runs(&runs_dir, "load"), runs(&runs_dir, "transform")),
        (0, 1)
    );

    std::fs::write(dir.path().join("fixed"), "").unwrap();
    let (code, out, err) =
        run_keel(&[&["retry", &old, "--wait", "--format", "json"][..], &c].concat());
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("submitting the 2 of its 4 tasks that did not succeed"),
        "{err}"
    );
    let doc = json(&out);
    let new = doc["job"].as_u64().unwrap();
    assert_eq!(doc["name"], format!("etl [retry of job {old}]"));
    assert_eq!(doc["state"], "succeeded");
    let keys: Vec<&str> = doc["status"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["transform", "load"]);
    assert_eq!(doc["status"]["job"]["retry_of"].to_string(), old);
    // Succeeded tasks did not run again; the retried ones ran once more.
    assert_eq!(runs(&runs_dir, "extract"), 1);
    assert_eq!(runs(&runs_dir, "side"), 1);
    assert_eq!(runs(&runs_dir, "transform"), 2);
    assert_eq!(runs(&runs_dir, "load"), 1);

    let (code, text, _) = run_keel(&[&["status", &new.to_string()][..], &c].concat());
    assert_eq!(code, 0);
    assert!(
        text.contains(&format!("retry of job {old} (`keel status {old}`)")),
        "{text}"
    );
    // The same job again: answered with the same retry, nothing runs twice.
    let (code, out, err) = run_keel(&[&["retry", &old][..], &c].concat());
    assert_eq!((code, out.trim()), (0, new.to_string().as_str()), "{err}");
    assert!(err.contains("already submitted as"), "{err}");
    assert_eq!(runs(&runs_dir, "load"), 1);
    // The retry succeeded: nothing left to retry.
    let (code, _, err) = run_keel(&[&["retry", &new.to_string()][..], &c].concat());
    assert_eq!(code, 1);
    assert!(
        err.contains("nothing to retry: every task succeeded"),
        "{err}"
    );
    let (code, _, _) = run_keel(&[&["retry", "999"][..], &c].concat());
    assert_eq!(code, 6);
}

#[test]
fn a_running_job_is_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let spec = job_file(
        dir.path(),
        "idle",
        "[job]\nname = \"idle\"\n\n[[task]]\nid = \"a\"\ncommand = \"true\"\n",
    );
    let (_, out, _) = run_keel(&["submit", spec.to_str().unwrap(), "--coordinator", &url]);
    let (code, _, err) = run_keel(&["retry", out.trim(), "--coordinator", &url]);
    assert_eq!(code, 1);
    assert!(err.contains("is still running"), "{err}");
}

#[test]
fn finished_names_are_reused_and_jobs_forgotten_after_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start_with(
        &dir.path().join("data"),
        None,
        &["--retention".to_string(), "3s".to_string()],
    );
    let url = serve.url();
    let c = ["--coordinator", url.as_str()];
    let _w = worker_with(&url, "w1", &[]);
    let v1 = "[job]\nname = \"nightly\"\n\n[[task]]\nid = \"a\"\ncommand = \"true\"\n";
    let v2 = "[job]\nname = \"nightly\"\n\n[[task]]\nid = \"b\"\ncommand = \"true\"\n";
    let submit = |file: &str, toml: &str| {
        let path = job_file(dir.path(), file, toml);
        let (code, out, err) =
            run_keel(&[&["submit", path.to_str().unwrap(), "--wait"][..], &c].concat());
        assert_eq!(code, 0, "{err}");
        (out.trim().to_string(), err)
    };
    let (first, _) = submit("v1", v1);
    let finished = Instant::now();
    let (again, err) = submit("v1-again", v1);
    assert_eq!(
        again, first,
        "the same spec is the same job while it is retained"
    );
    assert!(err.contains("already submitted"), "{err}");
    let (second, _) = submit("v2", v2);
    assert_ne!(
        second, first,
        "a new spec under a finished job's name is a new job"
    );
    let (code, doc, _) = run_keel(&[&["status", &first, "--format", "json"][..], &c].concat());
    assert_eq!(code, 0);
    assert_eq!(
        json(&doc)["tasks"][0]["key"],
        "a",
        "the old job is still there by id"
    );

    std::thread::sleep(Duration::from_millis(3_500).saturating_sub(finished.elapsed()));
    let (code, _, err) = run_keel(&[&["status", &first][..], &c].concat());
    assert_eq!(code, 6, "forgotten after --retention 3s: {err}");
    for bad in ["soon", "0s", "999ms"] {
        assert_eq!(
            run_keel(&["serve", "--retention", bad]).0,
            2,
            "--retention {bad}"
        );
    }
}
