use super::*;

const OK: &str = r#"
name = "t"
heal_at_ms = 10000
[[worker]]
name = "w1"
[[job]]
name = "j"
[[job.task]]
key = "a"
[[job.task]]
key = "b"
after = ["a"]
"#;

#[test]
fn a_valid_file_loads() {
    let s = load("ok.toml", OK).unwrap();
    assert_eq!(s.jobs[0].tasks[1].after[0].get_ref(), "a");
    assert_eq!(s.workers[0].max_concurrency, 1);
}

#[test]
fn unknown_dependency_points_at_its_line() {
    let src = OK.replace("after = [\"a\"]", "after = [\"zz\"]");
    let e = load("bad.toml", &src).unwrap_err();
    assert_eq!((e.line, e.col), (12, 10), "{e}");
    assert!(e.to_string().starts_with("bad.toml:12:10: "), "{e}");
}

#[test]
fn syntax_and_type_errors_carry_positions() {
    let e = load("x.toml", "name = \"t\"\nheal_at_ms = \"soon\"\n").unwrap_err();
    assert_eq!(e.line, 2, "{e}");
    let e = load("x.toml", "name = \"t\"\nheal_at_ms = 5\nbogus = 1\n").unwrap_err();
    assert!(e.message.contains("bogus"), "{e}");
}

#[test]
fn fault_fields_and_references_are_checked() {
    let src = format!("{OK}\n[[fault]]\nat_ms = 5\nkind = \"pause_worker\"\nworker = \"w1\"\n");
    let e = load("f.toml", &src).unwrap_err();
    assert!(e.message.contains("for_ms"), "{e}");
    let src = format!("{OK}\n[[fault]]\nat_ms = 5\nkind = \"crash_worker\"\nworker = \"nobody\"\n");
    let e = load("f.toml", &src).unwrap_err();
    assert!(
        e.message.contains("nobody") && e.message.ends_with("known: w1"),
        "{e}"
    );
    assert_eq!(e.line, 17, "{e}");
    let src = format!("{OK}\n[[fault]]\nat_ms = 5\nkind = \"slow_fsync\"\nfor_ms = 100\n");
    let e = load("f.toml", &src).unwrap_err();
    assert!(e.message.contains("delay_ms"), "{e}");
}

/// Loads `OK` with `extra` appended; the error, if any.
fn with(extra: &str) -> Result<Scenario, ScenarioError> {
    load("x.toml", &format!("{OK}{extra}"))
}

#[test]
fn a_misspelt_count_is_refused_at_its_position_with_the_valid_names() {
    let e = with("[[expect.count]]\nwhat = \"effect:task_requeud\"\nmax = 0\n").unwrap_err();
    assert_eq!((e.line, e.col), (14, 8), "{e}");
    assert!(e.message.contains("\"task_requeud\""), "{e}");
    assert!(e.message.contains("task_requeued, task_suspended"), "{e}");
    let e = with("[[expect.count]]\nwhat = \"revoke:lease_expird\"\n").unwrap_err();
    assert!(e.message.contains("lease_expired"), "{e}");
    let e = with("[[expect.count]]\nwhat = \"reject:stale_fense\"\n").unwrap_err();
    assert!(e.message.contains("stale_fence"), "{e}");
    let e = with("[[expect.count]]\nwhat = \"check:double_leese\"\n").unwrap_err();
    assert!(e.message.contains("double_lease"), "{e}");
    let e = with("[[expect.count]]\nwhat = \"effect:worker_lost\"\nworker = \"w2\"\n").unwrap_err();
    assert!(
        e.message.contains("unknown worker \"w2\"; known: w1"),
        "{e}"
    );
    assert!(with("[[expect.count]]\nwhat = \"effect:task_requeued\"\nmax = 0\n").is_ok());
}

#[test]
fn count_scopes_name_declared_jobs_tasks_and_sane_windows() {
    let count = |fields: &str| {
        with(&format!(
            "[[expect.count]]\nwhat = \"lease:started\"\n{fields}"
        ))
    };
    assert!(count("job = \"j\"\ntask = \"b\"\nattempt = 1\nfrom_ms = 0\nuntil_ms = 5\n").is_ok());
    let e = count("job = \"j\"\ntask = \"c\"\n").unwrap_err();
    assert!(e.message.contains("unknown task \"c\"; known: a, b"), "{e}");
    let e = count("task = \"a\"\n").unwrap_err();
    assert!(e.message.contains("needs job"), "{e}");
    let e = count("job = \"k\"\n").unwrap_err();
    assert!(e.message.contains("unknown job \"k\""), "{e}");
    let e = count("from_ms = 9\nuntil_ms = 5\n").unwrap_err();
    assert!(e.message.contains("after until_ms"), "{e}");
    let e = count("min = 3\nmax = 1\n").unwrap_err();
    assert!(e.message.contains("exceeds"), "{e}");
}

#[test]
fn job_outcomes_are_checked() {
    let e = with("[expect.jobs]\nj = \"succeded\"\n").unwrap_err();
    assert!(e.message.contains("succeeded, failed, cancelled"), "{e}");
    assert_eq!(e.line, 14, "{e}");
    assert!(with("[expect.jobs]\nj = \"deadline_exceeded\"\n").is_ok());
}

#[test]
fn script_steps_name_known_workers_and_tasks_and_only_their_fields() {
    let step = |fields: &str| with(&format!("[[script]]\nat_ms = 5\nworker = \"w1\"\n{fields}"));
    assert!(step("do = \"complete\"\njob = \"j\"\ntask = \"a\"\nattempt = 1\nepoch = 1\n").is_ok());
    assert!(step("do = \"request\"\ncredits = 2\n").is_ok());
    assert!(step("do = \"register\"\nincarnation = 1\n").is_ok());
    let e = step("do = \"complete\"\n").unwrap_err();
    assert!(
        e.message.contains("job = \"name\" and task = \"key\""),
        "{e}"
    );
    let e = step("do = \"skip_renewals\"\ncredits = 2\n").unwrap_err();
    assert!(e.message.contains("takes no fields, not credits"), "{e}");
    let e = step("do = \"complet\"\n").unwrap_err();
    assert!(e.message.contains("complete"), "{e}");
    let e = step("do = \"fail\"\njob = \"j\"\ntask = \"z\"\n").unwrap_err();
    assert!(e.message.contains("unknown task \"z\""), "{e}");
    let e = step("do = \"register\"\nincarnation = 0\n").unwrap_err();
    assert!(e.message.contains("from 1 to 999"), "{e}");
    let e = step("do = \"register\"\nincarnation = 1000\n").unwrap_err();
    assert!(e.message.contains("from 1 to 999"), "{e}");
    let e = with("[[script]]\nat_ms = 5\nworker = \"w9\"\ndo = \"request\"\n").unwrap_err();
    assert!(
        e.message.contains("unknown worker \"w9\"; known: w1"),
        "{e}"
    );
}

#[test]
fn every_new_field_survives_printing_and_loading_again() {
    let extra = r#"
[[fault]]
at_ms = 5
kind = "slow_fsync"
for_ms = 100
delay_ms = 9223372036854775807

[[fault]]
at_ms = 6
kind = "corrupt_log"
for_ms = 0

[[script]]
at_ms = 9223372036854775807
worker = "w1"
do = "fail"
job = "j"
task = "b"
attempt = 0
epoch = 9223372036854775807
permanent = true

[expect]
recovery_refused = true

[expect.jobs]
j = "rejected"

[[expect.count]]
what = "check:invented_input"
worker = "w1"
job = "j"
task = "a"
attempt = 4294967295
from_ms = 0
until_ms = 0
min = 0
max = 0
"#;
    let s = with(extra).unwrap();
    let printed = s.to_toml();
    let again = load("printed.toml", &printed).unwrap_or_else(|e| panic!("{e}\n{printed}"));
    assert_eq!(again, s, "{printed}");
    assert_eq!(again.script[0].epoch, Some(i64::MAX as u64));
}

#[test]
fn engine_timeouts_below_their_floors_are_refused_at_their_key() {
    let src = OK.replace(
        "[[worker]]",
        "[engine]\ngrant_ttl_ms = 500\nliveness_timeout_ms = 0\n\n[[worker]]",
    );
    let e = load("zero.toml", &src).unwrap_err();
    assert_eq!(
        e.to_string(),
        "zero.toml:6:1: engine.liveness_timeout_ms must be at least 1000 ms"
    );
    let src = OK.replace(
        "[[worker]]",
        "[engine]\ntenant_caps = { t = 0 }\n\n[[worker]]",
    );
    let e = load("caps.toml", &src).unwrap_err();
    assert_eq!(e.line, 5);
    assert!(
        e.message
            .starts_with("engine.tenant_caps.t must be at least 1"),
        "{e}"
    );
}
