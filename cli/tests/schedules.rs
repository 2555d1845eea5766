//! Real processes: `keel schedule` against `keel serve` (embedded log) and a shell
//! worker. An interval schedule fires runs named `<schedule>@<due second>` that the
//! worker runs; adding it again is a duplicate, another spec under its name a conflict;
//! `list` shows it in a table and in JSON with its run count; `pause` stops the runs
//! and `resume` starts them again; a coordinator killed and restarted on its data
//! directory keeps the schedule and its count and fires on; `delete` forgets it. Bad
//! input (cron field, time zone, interval, flags) is refused naming what is wrong, and
//! nothing is stored.

mod process;

use process::{job_file, run_keel, until_workers, worker, Serve};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long any one awaited condition may take.
const BOUND: Duration = Duration::from_secs(15);
/// How long a paused or deleted schedule is watched for runs it should not make.
const QUIET: Duration = Duration::from_millis(2_500);

/// Runs `keel schedule ARGS --coordinator URL`: exit status and stdout + stderr.
fn schedule(url: &str, args: &[&str]) -> (i32, String) {
    let mut all = vec!["schedule"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--coordinator", url]);
    let (code, out, err) = run_keel(&all);
    (code, format!("{out}{err}"))
}

/// `keel schedule list --format json`: the schedules array.
fn listed(url: &str) -> Vec<Value> {
    let (code, out) = schedule(url, &["list", "--format", "json"]);
    assert_eq!(code, 0, "{out}");
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    doc["schedules"]
        .as_array()
        .cloned()
        .expect("a schedules array")
}

/// The one listed schedule (named `name`).
fn only(url: &str, name: &str) -> Value {
    let all = listed(url);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["name"], name, "{all:?}");
    all[0].clone()
}

fn runs(url: &str, name: &str) -> u64 {
    only(url, name)["runs"].as_u64().expect("runs is a count")
}

/// Lines the runs appended.
fn lines(log: &Path) -> usize {
    std::fs::read_to_string(log).map_or(0, |t| t.lines().count())
}

/// Polls `done` until it holds, failing the test after [`BOUND`].
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < BOUND, "{what} within {BOUND:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until at least `more` runs past `from` appended their line.
fn until_more_lines(log: &Path, from: usize, more: usize, what: &str) {
    until(&format!("{what}: {more} more runs after {from}"), || {
        lines(log) >= from + more
    });
}

/// Asserts the schedule makes no run for [`QUIET`]: neither a run counted nor a line.
fn stays_quiet(url: &str, name: &str, log: &Path, why: &str) {
    // A run submitted just before may still be on its way to the worker.
    until(&format!("{why}: every run ends"), || {
        let args = ["jobs", "--state", "running", "--format", "json"];
        let (_, out, _) = run_keel(&[&args[..], &["--coordinator", url]].concat());
        serde_json::from_str::<Value>(&out).is_ok_and(|doc| doc["matched"] == 0)
    });
    let fired = || {
        let all = listed(url);
        all.iter()
            .find(|s| s["name"] == name)
            .map(|s| s["runs"].clone())
    };
    let (count, before) = (lines(log), fired());
    std::thread::sleep(QUIET);
    assert_eq!(lines(log), count, "{why}: a run ran");
    assert_eq!(fired(), before, "{why}: a run was submitted");
}

/// Add, duplicate, conflict; runs appear as jobs named after their due second.
fn adds_and_fires(url: &str, dir: &Path, log: &Path) {
    let command = format!("echo ran >> {}", log.display());
    let spec = format!("[job]\nname = \"tick\"\n\n[[task]]\nid = \"a\"\ncommand = '{command}'\n");
    let job = job_file(dir, "tick", &spec).display().to_string();
    let add = |every: &str| schedule(url, &["add", &job, "--every", every, "--overlap", "allow"]);

    let (code, out) = add("1s");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("schedule \"tick\" added; next run at "),
        "{out}"
    );
    let (code, out) = add("1s");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("\"tick\" already exists with this spec"),
        "{out}"
    );
    let (code, out) = add("2s");
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("schedule_name_conflict"), "{out}");

    until_more_lines(log, 0, 2, "a 1s schedule");
    let (code, jobs, err) = run_keel(&["jobs", "--coordinator", url]);
    assert_eq!(code, 0, "{err}");
    let named = jobs.lines().filter(|l| l.contains(" tick@20")).count();
    assert!(named >= 2, "runs are jobs named tick@<due second>:\n{jobs}");
}

/// The table's header and row, and the JSON document.
fn lists(url: &str) {
    let (code, text) = schedule(url, &["list"]);
    assert_eq!(code, 0, "{text}");
    let mut rows = text.lines();
    let head: Vec<&str> = rows.next().unwrap_or_default().split_whitespace().collect();
    let want = "NAME TRIGGER STATE NEXT LAST RUNS SKIPPED MISSED FAILED";
    assert_eq!(head, want.split(' ').collect::<Vec<_>>(), "{text}");
    let row = rows.next().unwrap_or_default();
    assert!(row.starts_with("tick  every 1s  "), "{text}");
    assert_eq!(rows.next(), None, "{text}");

    let tick = only(url, "tick");
    assert!(tick["runs"].as_u64() >= Some(2), "{tick}");
    assert_eq!(tick["job"], "tick", "{tick}");
    assert_eq!(tick["trigger"], "every 1s", "{tick}");
    assert_eq!(tick["overlap"], "allow", "{tick}");
    assert_eq!(tick["paused"], false, "{tick}");
    for field in ["next_due", "last_due"] {
        assert!(tick[field].as_str().is_some_and(|t| t.len() > 19), "{tick}");
        assert!(tick[format!("{field}_ms")].as_u64() > Some(0), "{tick}");
    }
}

/// Pause stops the runs and shows `paused`; resume starts them again.
fn pauses_and_resumes(url: &str, log: &Path) {
    let (code, out) = schedule(url, &["pause", "tick"]);
    assert_eq!((code, out.as_str()), (0, "schedule \"tick\" paused\n"));
    stays_quiet(url, "tick", log, "paused");
    let (_, text) = schedule(url, &["list"]);
    let state: Vec<&str> = text
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split("  ")
        .collect();
    assert!(state.contains(&"paused"), "{text}");
    let tick = only(url, "tick");
    assert_eq!(tick["paused"], true, "{tick}");
    assert_eq!(
        (&tick["next_due"], &tick["next_due_ms"]),
        (&Value::Null, &Value::Null)
    );

    let (code, out) = schedule(url, &["resume", "tick"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("schedule \"tick\" resumed; next run at "),
        "{out}"
    );
    until_more_lines(log, lines(log), 2, "resumed");
}

/// A coordinator killed and restarted on its data directory keeps the schedule.
fn survives_a_restart(serve: &mut Serve, log: &Path) {
    let url = serve.url();
    let before = runs(&url, "tick");
    serve.kill_and_restart();
    let after = runs(&url, "tick");
    assert!(after >= before, "runs went from {before} to {after}");
    assert!(!only(&url, "tick")["paused"].as_bool().unwrap_or(true));
    until_more_lines(log, lines(log), 2, "after the restart");
    until("the restarted coordinator fires on", || {
        runs(&url, "tick") >= after + 2
    });
}

/// Delete forgets the schedule; changing an unknown one is NOT_FOUND.
fn deletes(url: &str, log: &Path) {
    let (code, out) = schedule(url, &["delete", "tick"]);
    assert_eq!((code, out.as_str()), (0, "schedule \"tick\" deleted\n"));
    let (code, text) = schedule(url, &["list"]);
    assert_eq!((code, text.as_str()), (0, "no schedules\n"));
    assert!(listed(url).is_empty());
    stays_quiet(url, "tick", log, "deleted");
    // Exit::NotFound.
    for change in ["pause", "resume", "delete"] {
        let (code, out) = schedule(url, &[change, "tick"]);
        assert_eq!(code, 6, "{change}: {out}");
        assert!(out.contains("unknown_schedule"), "{change}: {out}");
    }
}

#[test]
fn an_interval_schedule_fires_pauses_resumes_survives_a_restart_and_is_deleted() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let _worker = worker(&url, "w1", 2);
    until_workers(&url, &["w1"]);
    let log = dir.path().join("runs");

    adds_and_fires(&url, dir.path(), &log);
    lists(&url);
    pauses_and_resumes(&url, &log);
    survives_a_restart(&mut serve, &log);
    deletes(&url, &log);
    eprintln!("schedule lifecycle took {:?}", started.elapsed());
}

#[test]
fn bad_schedules_are_refused_naming_the_problem_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let spec = "[job]\nname = \"nightly\"\n\n[[task]]\nid = \"a\"\ncommand = 'true'\n";
    let job = job_file(dir.path(), "nightly", spec).display().to_string();
    let (code, out) = schedule(&url, &["add", &job, "--every", "1h", "--name", "good"]);
    assert_eq!(code, 0, "{out}");

    let add = |extra: &[&str]| {
        let mut args = vec!["add", job.as_str(), "--name", "bad"];
        args.extend_from_slice(extra);
        schedule(&url, &args)
    };
    for (extra, code, want) in [
        (&["--cron", "61 * * * *"][..], 1, "61 is out of range 0-59"),
        (
            &["--cron", "* * * * *", "--tz", "Mars/Olympus"],
            1,
            "unknown time zone \"Mars/Olympus\"",
        ),
        (&["--every", "500ms"], 1, "interval 500 ms is outside"),
        (&["--every", "1 second"], 2, "is not a duration"),
        (&[], 2, "the following required arguments were not provided"),
        (
            &["--every", "1s", "--cron", "@daily"],
            2,
            "cannot be used with",
        ),
        (&["--every", "1s", "--tz", "UTC"], 2, "cannot be used with"),
    ] {
        let (got, out) = add(extra);
        assert_eq!(got, code, "{extra:?}: {out}");
        assert!(out.contains(want), "{extra:?}: wanted {want:?} in {out}");
        if code == 1 {
            assert!(out.contains("invalid_schedule"), "{extra:?}: {out}");
        }
    }
    let all = listed(&url);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["name"], "good");
    assert_eq!(all[0]["trigger"], "every 1h");
}
