//! Real processes: a command's stdout is its task's output, read back with `keel
//! output`, `keel result` and `keel submit --wait --result`; an output over
//! `--max-output-bytes` fails the task for good instead of being cut short.

mod process;

use process::{job_file, run_keel, worker_with, Serve};
use serde_json::Value;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn outputs_and_results_are_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let c = ["--coordinator", url.as_str()];
    let _w = worker_with(
        &url,
        "w1",
        &["--concurrency", "2", "--max-output-bytes", "64"],
    );
    // "count" and "total" are the sinks, so the result; "words" feeds "count".
    let spec = job_file(
        dir.path(),
        "flow",
        "[job]\nname = \"flow\"\n\n\
         [[task]]\nid = \"words\"\ncommand = \"printf 'a b c'\"\n\n\
         [[task]]\nid = \"count\"\ncommand = \"echo 3\"\ndeps = [\"words\"]\n\n\
         [[task]]\nid = \"total\"\ncommand = \"printf '\\\\377\\\\000'\"\n",
    );
    let (code, out, err) = run_keel(
        &[
            &["submit", spec.to_str().unwrap(), "--wait", "--result"][..],
            &c,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    let mut lines = out.splitn(2, '\n');
    let job = lines.next().unwrap().to_string();
    let result = json(lines.next().unwrap());
    assert_eq!(result["count"], "3\n");
    assert_eq!(result["total"]["base64"], "/wA=");
    assert!(result.get("words").is_none(), "not a result task: {result}");

    let (code, out, err) = run_keel(&[&["output", &job, "words"][..], &c].concat());
    assert_eq!((code, out.as_str()), (0, "a b c"), "{err}");
    let file = dir.path().join("total.bin");
    let (code, _, err) = run_keel(
        &[
            &["output", &job, "total", "--out", file.to_str().unwrap()][..],
            &c,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), [0xff, 0x00]);
    let (code, _, err) = run_keel(&[&["output", &job, "nope"][..], &c].concat());
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("has no task with key \"nope\""), "{err}");
    let (code, out, _) = run_keel(&[&["result", &job, "--format", "json"][..], &c].concat());
    assert_eq!(code, 0);
    assert_eq!(json(&out), result);
    let (code, _, _) = run_keel(&[&["result", "999"][..], &c].concat());
    assert_eq!(code, 6);
}

#[test]
fn an_output_over_the_limit_fails_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let c = ["--coordinator", url.as_str()];
    let _w = worker_with(&url, "w1", &["--max-output-bytes", "10"]);
    let spec = job_file(
        dir.path(),
        "big",
        "[job]\nname = \"big\"\n\n[defaults]\nretry = { max_attempts = 3 }\n\n\
         [[task]]\nid = \"loud\"\ncommand = \"printf 'eleven bytes'\"\n",
    );
    let (code, out, err) = run_keel(
        &[
            &["submit", spec.to_str().unwrap(), "--wait", "--result"][..],
            &c,
        ]
        .concat(),
    );
    assert_eq!(code, 3, "{err}");
    let job = out.lines().next().unwrap().to_string();
    assert!(err.contains("no output from loud"), "{err}");
    let (_, text, _) = run_keel(&[&["status", &job][..], &c].concat());
    assert!(
        text.contains("wrote 12 bytes to stdout, more than --max-output-bytes (10)"),
        "{text}"
    );
    // Failed for good on its first attempt, not retried.
    assert!(!text.contains("attempt 2"), "{text}");
    let (code, _, err) = run_keel(&[&["output", &job, "loud"][..], &c].concat());
    assert_eq!(code, 1);
    assert!(err.contains("has no output: it is failed"), "{err}");
}
