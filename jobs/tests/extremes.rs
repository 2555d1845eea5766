//! Job files with every number at the edge of its type: the loader either refuses
//! them with a located report or accepts them, and then the planner and the engine take
//! them without overflowing (sums saturate at `u64::MAX`).

use keel_engine::{
    Accepted, ClientCommand, Config, Effect, Engine, Input, InstanceId, WorkerCommand, WorkerId,
};
use keel_jobs::{load_job, plan, Limits};

/// The reported file: backoff and cap at `u64::MAX` ms with full jitter, and every
/// other duration and number at its largest.
const EXTREMES: &str = r#"
[job]
name = "extremes"
priority = 2147483647
deadline = "18446744073709551615ms"

[defaults]
max_concurrency = 4294967295
attempt_timeout = "18446744073709551615ms"
estimate = "18446744073709551615ms"
retry = { max_attempts = 4294967295, backoff = "18446744073709551615ms", backoff_max = "18446744073709551615ms", backoff_factor = 4294967295, jitter_pct = 100 }

[[task]]
id = "a"
priority = -2147483648

[[task]]
id = "b"
deps = ["a"]
delay = "18446744073709551615ms"

[[task]]
id = "c"
deps = { quorum = 2, of = ["a", "b"] }
estimate = 9223372036854775807
"#;

#[test]
fn a_file_of_extremes_plans_without_overflow() {
    let job = load_job("extremes.toml", EXTREMES, &Limits::default()).expect("accepted");
    let p = plan(&job, None);
    assert_eq!(p.critical_path.length_ms, u64::MAX, "finish times saturate");
    assert!(p.to_text().contains("critical path"));
    assert!(p.to_json().contains("\"length_ms\": 18446744073709551615"));
}

#[test]
fn a_file_of_extremes_runs_in_the_engine_without_panicking() {
    let job = load_job("extremes.toml", EXTREMES, &Limits::default()).expect("accepted");
    let mut e = Engine::new(Config::default());
    let w = WorkerId::new("w");
    let as_worker = |cmd| Input::worker(&w, InstanceId::new(1), cmd);
    let reg = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 1,
    };
    e.apply(0, as_worker(reg));
    let submit = Input::Client(ClientCommand::SubmitJob(job.into_spec()));
    assert!(matches!(e.apply(0, submit).reply, Some(Ok(_))));
    let out = e.apply(1, as_worker(WorkerCommand::RequestWork { credits: 1 }));
    let Some(Effect::GrantOffered { grant, .. }) = out.effects.first().cloned() else {
        panic!("no grant: {out:?}");
    };
    let out = e.apply(1, as_worker(WorkerCommand::AcceptGrant { grant }));
    let Some(Ok(Accepted::LeaseStarted { fence, .. })) = out.reply else {
        panic!("no lease: {out:?}");
    };
    let fail = WorkerCommand::Fail {
        fence,
        error: "boom".into(),
        permanent: false,
    };
    let out = e.apply(2, as_worker(fail));
    assert!(
        matches!(
            out.reply,
            Some(Ok(Accepted::Failed {
                retry_at: Some(_),
                ..
            }))
        ),
        "{out:?}"
    );
    e.apply(u64::MAX, Input::Tick);
    assert_eq!(e.check_invariants(), Ok(()));
}

#[test]
fn numbers_past_their_type_are_refused_where_they_are_written() {
    for (text, line, needle) in [
        (
            "[job]\nname = \"j\"\npriority = 2147483648\n[[task]]\nid = \"a\"\n",
            3,
            "priority",
        ),
        (
            "[job]\nname = \"j\"\ndeadline = \"18446744073709551616ms\"\n[[task]]\nid = \"a\"\n",
            3,
            "deadline",
        ),
        (
            "[job]\nname = \"j\"\ndeadline = \"213503982335d\"\n[[task]]\nid = \"a\"\n",
            3,
            "too long",
        ),
        (
            "[job]\nname = \"j\"\n[[task]]\nid = \"a\"\nretry = { jitter_pct = 256 }\n",
            5,
            "jitter_pct",
        ),
        (
            "[job]\nname = \"j\"\n[[task]]\nid = \"a\"\nretry = { jitter_pct = 101 }\n",
            5,
            "jitter_pct must be at most 100",
        ),
        (
            "[job]\nname = \"j\"\n[defaults]\nattempt_timeout = 0\n[[task]]\nid = \"a\"\n",
            4,
            "attempt_timeout: must be at least 1",
        ),
    ] {
        let err = load_job("j.toml", text, &Limits::default()).expect_err(text);
        assert_eq!(err.line, line, "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    }
}
