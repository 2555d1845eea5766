//! The `engine_ops` fuzz target's checks, run without the fuzzer: random op sequences
//! from proptest, and every input of the checked-in corpus (`fuzz/corpus/engine_ops/`)
//! through its JSON export next to it, so a regression the fuzzer once found fails
//! `cargo test`. Also regressions for the time overflows the harnesses exposed.

#[path = "../fuzz_ops/mod.rs"]
mod fuzz_ops;

use fuzz_ops::{Case, Fenced, Inst, JobOp, Op, Sender, TaskOp};
use keel_engine::*;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn inst() -> impl Strategy<Value = Inst> {
    prop_oneof![Just(Inst::Current), Just(Inst::Next), Just(Inst::Older)]
}

fn sender() -> impl Strategy<Value = Sender> {
    prop_oneof![
        3 => Just(Sender::Owner),
        1 => Just(Sender::OwnerOlder),
        1 => any::<u8>().prop_map(Sender::Other),
    ]
}

fn fenced() -> impl Strategy<Value = Fenced> {
    prop_oneof![
        Just(Fenced::Renew),
        any::<u8>().prop_map(|output| Fenced::Complete { output }),
        (any::<bool>(), any::<u8>())
            .prop_map(|(permanent, error)| Fenced::Fail { permanent, error }),
        (any::<u8>(), any::<Option<u16>>(), any::<bool>()).prop_map(
            |(waitpoint, timeout_ms, resume)| Fenced::Suspend {
                waitpoint,
                timeout_ms,
                resume
            }
        ),
    ]
}

fn task_op() -> impl Strategy<Value = TaskOp> {
    let deps = proptest::collection::vec(any::<u8>(), 0..3);
    (
        (
            any::<u8>(),
            prop_oneof![3 => Just(0u8), 1 => any::<u8>()],
            deps,
            0u8..4,
            any::<bool>(),
        ),
        (
            1u8..4,
            0u16..800,
            any::<u8>(),
            any::<Option<u16>>(),
            prop_oneof![Just(0u16), any::<u16>()],
        ),
        (
            any::<Option<i8>>(),
            any::<bool>(),
            prop_oneof![Just(0u8), any::<u8>()],
        ),
    )
        .prop_map(
            |(
                (key, caps, deps, group, cancel),
                (attempts, backoff, jitter, timeout, delay),
                (priority, allow, payload),
            )| TaskOp {
                key,
                caps,
                deps,
                group,
                cancel_on_unsatisfied: cancel,
                max_attempts: attempts,
                backoff_ms: backoff,
                jitter_pct: jitter,
                attempt_timeout_ms: timeout,
                delay_ms: delay,
                priority,
                allow_failure: allow,
                payload,
            },
        )
}

fn job_op() -> impl Strategy<Value = JobOp> {
    (
        any::<u8>(),
        0u8..3,
        0u8..4,
        any::<i8>(),
        any::<Option<u16>>(),
        any::<Option<u8>>(),
        proptest::collection::vec(task_op(), 1..5),
    )
        .prop_map(
            |(name, tenant, lane, priority, deadline_ms, max_concurrency, tasks)| JobOp {
                name,
                tenant,
                lane,
                priority,
                deadline_ms,
                max_concurrency,
                tasks,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    let w = 0u8..5;
    prop_oneof![
        3 => (w.clone(), inst(), any::<u8>(), prop_oneof![Just(0u8), any::<u8>()], 1u8..6)
            .prop_map(|(worker, instance, caps, lanes, max_concurrency)| Op::Register { worker, instance, caps: caps & 0x0f, lanes, max_concurrency }),
        1 => (w.clone(), inst()).prop_map(|(worker, instance)| Op::Heartbeat { worker, instance }),
        4 => (w.clone(), any::<u8>()).prop_map(|(worker, credits)| Op::RequestWork { worker, credits }),
        1 => w.clone().prop_map(|worker| Op::Drain { worker }),
        1 => w.prop_map(|worker| Op::Deregister { worker }),
        5 => (0u8..3, sender()).prop_map(|(grant, sender)| Op::Accept { grant, sender }),
        1 => (0u8..3, sender()).prop_map(|(grant, sender)| Op::Release { grant, sender }),
        6 => (0u8..3, sender(), proptest::bool::weighted(0.1), fenced())
            .prop_map(|(lease, sender, stale_epoch, cmd)| Op::Fenced { lease, sender, stale_epoch, cmd }),
        3 => job_op().prop_map(Op::Submit),
        1 => any::<u8>().prop_map(|job| Op::Cancel { job }),
        2 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(task, waitpoint, key, payload)| Op::Signal { task, waitpoint, key, payload }),
        4 => (0u16..400).prop_map(|ms| Op::Advance { ms }),
        1 => any::<u32>().prop_map(|ms| Op::Jump { ms: ms % 5_000 }),
        1 => Just(Op::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_op_sequences_keep_every_property(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..80)) {
        fuzz_ops::run(&Case { seed, ops });
    }
}

fn dir(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn names(dir: &PathBuf, strip: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.expect("corpus entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .map(|n| n.strip_suffix(strip).map(str::to_string).unwrap_or(n))
        .collect()
}

/// The byte corpus decodes through `arbitrary`, which keel-engine does not depend on;
/// `fuzz/README.md` has the one command that exports it as JSON beside the bytes.
#[test]
fn every_corpus_input_keeps_every_property() {
    let bytes = dir("../fuzz/corpus/engine_ops");
    let json = dir("tests/fuzz_corpus/engine_ops");
    let exported = names(&json, ".json");
    assert_eq!(
        names(&bytes, ""),
        exported,
        "the JSON export of the corpus is stale"
    );
    assert!(exported.len() >= 10, "corpus has {} inputs", exported.len());
    for name in exported {
        let text = std::fs::read_to_string(json.join(format!("{name}.json"))).expect("reads");
        let case: Case = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let outcome = std::panic::catch_unwind(|| fuzz_ops::run(&case));
        assert!(outcome.is_ok(), "corpus input {name} breaks a property");
    }
}

/// Durations come from clients and workers, and times are `now + duration`.
/// Each of these once panicked with "attempt to add with overflow" (and wrapped into
/// the past in release builds); the engine now saturates.
fn at_one(input: Input) -> (Engine, Outputs) {
    let mut e = Engine::new(Config::default());
    let out = e.apply(1, input);
    (e, out)
}

fn leased(spec: JobSpec) -> (Engine, Fence) {
    let mut e = Engine::new(Config::default());
    let w = WorkerId::new("w");
    let reg = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 1,
    };
    e.apply(1, Input::worker(&w, InstanceId::new(1), reg));
    e.apply(1, Input::Client(ClientCommand::SubmitJob(spec)));
    let out = e.apply(
        1,
        Input::worker(
            &w,
            InstanceId::new(1),
            WorkerCommand::RequestWork { credits: 1 },
        ),
    );
    let Some(Effect::GrantOffered { grant, .. }) = out.effects.first().cloned() else {
        panic!("no grant: {out:?}");
    };
    let out = e.apply(
        1,
        Input::worker(&w, InstanceId::new(1), WorkerCommand::AcceptGrant { grant }),
    );
    let Some(Ok(Accepted::LeaseStarted { fence, .. })) = out.reply else {
        panic!("no lease: {out:?}");
    };
    (e, fence)
}

#[test]
fn huge_task_delay_is_refused_or_saturated() {
    let mut task = TaskSpec::new("a");
    task.delay_ms = u64::MAX;
    let (e, _) = at_one(Input::Client(ClientCommand::SubmitJob(JobSpec::new(
        "j",
        vec![task],
    ))));
    assert!(e.check_invariants().is_ok());
}

#[test]
fn huge_job_deadline_is_refused_or_saturated() {
    let mut spec = JobSpec::new("j", vec![TaskSpec::new("a")]);
    spec.deadline_ms = Some(u64::MAX);
    let (e, _) = at_one(Input::Client(ClientCommand::SubmitJob(spec)));
    assert!(e.check_invariants().is_ok());
}

#[test]
fn huge_attempt_timeout_is_refused_or_saturated() {
    let mut task = TaskSpec::new("a");
    task.attempt_timeout_ms = Some(u64::MAX);
    let (e, _) = leased(JobSpec::new("j", vec![task]));
    assert!(e.check_invariants().is_ok());
}

#[test]
fn huge_suspend_timeout_is_refused_or_saturated() {
    let (mut e, fence) = leased(JobSpec::new("j", vec![TaskSpec::new("a")]));
    let suspend = WorkerCommand::Suspend {
        fence,
        waitpoint: "wp".into(),
        timeout_ms: Some(u64::MAX),
        on_timeout: SuspendTimeout::Fail,
    };
    e.apply(
        1,
        Input::worker(&WorkerId::new("w"), InstanceId::new(1), suspend),
    );
    assert!(e.check_invariants().is_ok());
}

#[test]
fn huge_retry_backoff_is_refused_or_saturated() {
    let mut task = TaskSpec::new("a");
    task.retry = RetryPolicy {
        max_attempts: 3,
        backoff_base_ms: u64::MAX,
        backoff_factor: 1,
        backoff_max_ms: u64::MAX,
        jitter_pct: 0,
    };
    let (mut e, fence) = leased(JobSpec::new("j", vec![task]));
    let fail = WorkerCommand::Fail {
        fence,
        error: "x".into(),
        permanent: false,
    };
    e.apply(
        1,
        Input::worker(&WorkerId::new("w"), InstanceId::new(1), fail),
    );
    assert!(e.check_invariants().is_ok());
}

#[test]
fn time_near_the_end_does_not_overflow() {
    let mut e = Engine::new(Config::default());
    let reg = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 1,
    };
    e.apply(
        u64::MAX - 1,
        Input::worker(&WorkerId::new("w"), InstanceId::new(1), reg),
    );
    assert!(e.check_invariants().is_ok());
}
