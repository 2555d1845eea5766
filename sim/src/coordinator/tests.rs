use super::*;
use crate::rng::Stream;
use crate::storage::ArmedFault;
use keel_engine::{ClientCommand, JobSpec, TaskSpec};

fn submit(name: &str) -> Input {
    let spec = JobSpec::new(name, vec![TaskSpec::new("a")]);
    Input::Client(ClientCommand::SubmitJob(spec))
}

fn deliver(c: &mut Coordinator, at: Time, name: &str, rng: &mut SimRng) -> Vec<Commit> {
    let origin = Origin::Client { req: at };
    c.deliver(at, submit(name), origin, rng).unwrap()
}

/// The append a commit started.
fn started(commits: &[Commit]) -> (Time, u64) {
    match commits {
        [Commit::InFlight { done_at, append }] => (*done_at, *append),
        other => panic!("expected one append under way, got {other:?}"),
    }
}

fn released(commits: &[Commit]) -> Vec<u64> {
    commits
        .iter()
        .filter_map(|c| match c {
            Commit::Released(records) => Some(records.iter().map(|r| r.position)),
            _ => None,
        })
        .flatten()
        .collect()
}

/// A durable coordinator that has committed two batches of one job each.
fn committed() -> (Coordinator, SimRng) {
    let mut c = Coordinator::new(Config::default(), true, None, CheckPace::new(1, 0), 0);
    let mut rng = SimRng::new(5, Stream::Run);
    for (at, name) in [(1, "a"), (2, "b")] {
        let commits = deliver(&mut c, at, name, &mut rng);
        let (done_at, append) = started(&commits);
        assert_eq!(done_at, at, "an instant append");
        let commits = c.complete_append(at, append, &mut rng).unwrap();
        assert_eq!(released(&commits), [at]);
    }
    (c, rng)
}

fn recovered(c: &mut Coordinator) -> Result<Recovery, CheckFailure> {
    c.crash();
    c.restore(10)
}

#[test]
fn recovery_rebuilds_exactly_the_durable_inputs() {
    let (mut c, mut rng) = committed();
    // Appended but never synced: lost in the crash, as it was never acknowledged.
    deliver(&mut c, 3, "c", &mut rng);
    assert!(matches!(
        recovered(&mut c),
        Ok(Recovery::Recovered { torn_bytes: 0 })
    ));
    assert!(c.engine.job_by_name("b").is_some());
    assert!(c.engine.job_by_name("c").is_none());
}

#[test]
fn a_recovery_that_loses_an_acknowledged_batch_is_caught() {
    let (mut c, _) = committed();
    c.durable.as_mut().unwrap().storage.drop_last_frame();
    let f = recovered(&mut c).err().expect("caught");
    assert_eq!(f.check, Check::LostAcknowledgedInput, "{f}");
}

#[test]
fn a_recovery_that_invents_an_input_is_caught() {
    let (mut c, mut rng) = committed();
    let d = c.durable.as_mut().unwrap();
    d.storage.append(3, &[(3, submit("ghost"))], &mut rng);
    d.storage.sync();
    let f = recovered(&mut c).err().expect("caught");
    assert_eq!(f.check, Check::InventedInput, "{f}");
}

#[test]
fn a_failed_append_releases_nothing_refuses_meanwhile_and_rebuilds_before_it() {
    let (mut c, mut rng) = committed();
    assert!(c.arm(ArmedFault::Fail));
    let commits = deliver(&mut c, 3, "c", &mut rng);
    assert!(
        matches!(commits.as_slice(), [Commit::Stopped(_)]),
        "{commits:?}"
    );
    assert!(released(&commits).is_empty());
    assert!(
        c.up && c.needs_restore(),
        "the engine is rebuilt, not the process"
    );
    assert!(
        deliver(&mut c, 4, "d", &mut rng).is_empty(),
        "refused meanwhile"
    );
    assert!(matches!(c.restore(9), Ok(Recovery::Recovered { .. })));
    assert!(c.engine.job_by_name("c").is_none());
    assert!(c.engine.job_by_name("d").is_none());
    assert!(c.engine.job_by_name("b").is_some());
    // After the rebuild, inputs are refused for the pipeline's first pause.
    assert_eq!(
        c.paused_until(),
        Some(9 + keel_protocol::commit::PAUSE_MIN_MS)
    );
    assert_eq!(
        c.next_wakeup(),
        c.paused_until(),
        "woken when the pause ends"
    );
    assert!(
        deliver(&mut c, 10, "paused", &mut rng).is_empty(),
        "refused while paused"
    );
    assert!(c.engine.job_by_name("paused").is_none());
    let at = 9 + keel_protocol::commit::PAUSE_MIN_MS;
    let (_, append) = started(&deliver(&mut c, at, "e", &mut rng));
    assert_eq!(c.paused_until(), None);
    let commits = c.complete_append(at, append, &mut rng).unwrap();
    assert_eq!(
        released(&commits),
        [3],
        "the log goes on from where it ended"
    );
}

#[test]
fn a_torn_append_is_dropped_by_recovery() {
    let (mut c, mut rng) = committed();
    c.arm(ArmedFault::Tear);
    let commits = deliver(&mut c, 3, "c", &mut rng);
    assert!(matches!(commits.as_slice(), [Commit::Stopped(_)]));
    assert!(!c.up);
    let r = c.restore(9);
    assert!(
        matches!(r, Ok(Recovery::Recovered { .. })),
        "torn bytes are a tail"
    );
    assert!(c.engine.job_by_name("c").is_none());
}

#[test]
fn a_corrupt_log_is_refused_and_an_intact_one_is_not() {
    let (mut c, mut rng) = committed();
    assert!(c.corrupt(&mut rng).is_some());
    assert!(matches!(recovered(&mut c), Ok(Recovery::Refused(_))));
}

#[test]
fn a_slow_append_pipelines_one_batch_and_releases_only_when_it_completes() {
    let (mut c, mut rng) = committed();
    c.set_fsync_ms(50);
    let (done_at, append) = started(&deliver(&mut c, 3, "c", &mut rng));
    assert_eq!(done_at, 53);
    assert!(deliver(&mut c, 4, "d", &mut rng).is_empty());
    assert!(
        c.engine.job_by_name("d").is_some(),
        "applied behind the append"
    );
    assert!(deliver(&mut c, 5, "e", &mut rng).is_empty());
    assert!(
        c.engine.job_by_name("e").is_none(),
        "queued: one batch waits"
    );
    assert_eq!(c.durable_position(), 2);
    let commits = c.complete_append(53, append, &mut rng).unwrap();
    assert_eq!(released(&commits), [3]);
    assert!(matches!(commits.last(), Some(Commit::InFlight { .. })));
    assert_eq!(c.durable_position(), 3);
    assert!(
        c.engine.job_by_name("e").is_some(),
        "applied once d went to the log"
    );
    // The process dies before d's fsync completes.
    assert!(matches!(recovered(&mut c), Ok(Recovery::Recovered { .. })));
    assert!(c.engine.job_by_name("c").is_some());
    assert!(c.engine.job_by_name("d").is_none());
}

#[test]
fn a_frame_is_applied_as_one_group_and_answered_together() {
    let (mut c, mut rng) = committed();
    // A batch is under way, so the frame that follows waits behind it as one group.
    let (_, first) = started(&deliver(&mut c, 3, "c", &mut rng));
    let frame = ["d", "e"].map(|name| (Origin::Client { req: 4 }, submit(name)));
    assert!(c
        .deliver_frame(4, frame.to_vec(), &mut rng)
        .unwrap()
        .is_empty());
    let commits = c.complete_append(5, first, &mut rng).unwrap();
    assert_eq!(released(&commits), [3]);
    let Some(Commit::InFlight { append, .. }) = commits.last() else {
        panic!("the frame's batch goes to the log next: {commits:?}");
    };
    let commits = c.complete_append(6, *append, &mut rng).unwrap();
    assert_eq!(
        released(&commits),
        [4, 5],
        "both inputs of the frame, in order"
    );
    assert!(c.engine.job_by_name("e").is_some());
}
