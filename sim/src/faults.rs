//! The fault model: what each scheduled fault does to the world when it starts and when
//! it ends, as a list of actions for the world to carry out. A fault that finds nothing
//! to act on (a crash of a worker that is already down) does nothing and leaves no mark.

use crate::fleet::{Fleet, Life};
use crate::scenario::{Direction, Fault, FaultKind};
use crate::storage::ArmedFault;
use keel_engine::WorkerId;

/// One thing a fault does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    KillWorker(usize),
    /// Starts the worker again if it is down.
    RestartWorker(usize),
    PauseWorker(usize),
    WakeWorker(usize),
    Cut(usize, Direction),
    Mend(usize, Direction),
    StepClock(usize, i64),
    CrashCoordinator,
    RecoverCoordinator,
    /// Arms a storage fault; a coordinator it stops comes back after `down_ms`.
    ArmStorage {
        fault: ArmedFault,
        down_ms: u64,
    },
    /// Every append takes this long (0: at once).
    FsyncDelay(u64),
    /// Flips one durable byte.
    CorruptStorage,
    Cancel(String),
}

/// What a fault does now: its actions, the mark it leaves (who, what), and when it
/// ends, if it does.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub actions: Vec<Action>,
    pub mark: Option<(String, String)>,
    pub end_after_ms: Option<u64>,
}

impl Plan {
    fn marked(who: &str, what: impl Into<String>, actions: Vec<Action>) -> Plan {
        Plan {
            actions,
            mark: Some((who.to_string(), what.into())),
            end_after_ms: None,
        }
    }

    fn ending(self, after_ms: Option<u64>) -> Plan {
        Plan {
            end_after_ms: after_ms,
            ..self
        }
    }
}

/// The worker a fault names (empty for faults that name none).
fn named_worker(f: &Fault) -> String {
    f.worker
        .as_ref()
        .map(|w| w.get_ref().clone())
        .unwrap_or_default()
}

fn index(fleet: &Fleet, name: &str) -> usize {
    // `load` checked every name a fault uses.
    fleet.index(&WorkerId::new(name)).unwrap_or(0)
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Both => "both ways",
        Direction::ToCoordinator => "to coordinator",
        Direction::FromCoordinator => "from coordinator",
    }
}

/// What `f` does when it starts.
pub(crate) fn start(f: &Fault, fleet: &Fleet, coordinator_up: bool) -> Plan {
    let worker = named_worker(f);
    match f.kind {
        FaultKind::CrashWorker => {
            let idx = index(fleet, &worker);
            if !matches!(fleet.life(idx), Life::Up | Life::Paused) {
                return Plan::default();
            }
            Plan::marked(&worker, "crash", vec![Action::KillWorker(idx)]).ending(f.restart_after_ms)
        }
        FaultKind::PauseWorker => {
            let idx = index(fleet, &worker);
            if fleet.life(idx) != Life::Up {
                return Plan::default();
            }
            let len = f.for_ms.unwrap_or(0);
            Plan::marked(
                &worker,
                format!("pause for {len} ms"),
                vec![Action::PauseWorker(idx)],
            )
            .ending(Some(len))
        }
        FaultKind::Partition => partition(f, fleet),
        FaultKind::ClockStep => {
            let delta = f.delta_ms.unwrap_or(0);
            let step = Action::StepClock(index(fleet, &worker), delta);
            Plan::marked(&worker, format!("clock step {delta:+} ms"), vec![step])
        }
        FaultKind::CrashCoordinator if coordinator_up => {
            Plan::marked("coordinator", "crash", vec![Action::CrashCoordinator])
                .ending(Some(f.for_ms.unwrap_or(0)))
        }
        FaultKind::CrashCoordinator => Plan::default(),
        FaultKind::CancelJob => {
            let job = f
                .job
                .as_ref()
                .map(|j| j.get_ref().clone())
                .unwrap_or_default();
            Plan::marked("client", format!("cancel {job}"), vec![Action::Cancel(job)])
        }
        FaultKind::FailAppend | FaultKind::TornAppend => arm(f),
        FaultKind::CorruptLog => corrupt(f, coordinator_up),
        FaultKind::SlowFsync => {
            let delay = f.delay_ms.unwrap_or(0);
            let what = format!("fsync slow: every append takes {delay} ms");
            Plan::marked("coordinator", what, vec![Action::FsyncDelay(delay)]).ending(f.for_ms)
        }
    }
}

fn partition(f: &Fault, fleet: &Fleet) -> Plan {
    let dir = f.direction.unwrap_or_default();
    let cuts = f
        .workers
        .iter()
        .map(|w| Action::Cut(index(fleet, w.get_ref()), dir))
        .collect();
    let names: Vec<&str> = f.workers.iter().map(|w| w.get_ref().as_str()).collect();
    let what = format!("partition {} ({})", names.join(","), direction_name(dir));
    Plan::marked("network", what, cuts).ending(f.for_ms)
}

fn arm(f: &Fault) -> Plan {
    let (fault, what) = match f.kind {
        FaultKind::FailAppend => (ArmedFault::Fail, "the next append will fail"),
        _ => (ArmedFault::Tear, "the next append will tear"),
    };
    let down_ms = f.for_ms.unwrap_or(0);
    Plan::marked("storage", what, vec![Action::ArmStorage { fault, down_ms }])
}

/// Flips a durable byte (the world marks where) and crashes a running coordinator, so
/// that its recovery meets the damage.
fn corrupt(f: &Fault, coordinator_up: bool) -> Plan {
    if !coordinator_up {
        return Plan {
            actions: vec![Action::CorruptStorage],
            ..Plan::default()
        };
    }
    let actions = vec![Action::CorruptStorage, Action::CrashCoordinator];
    Plan::marked("coordinator", "crash", actions).ending(Some(f.for_ms.unwrap_or(0)))
}

/// What `f` does when it ends.
pub(crate) fn end(f: &Fault, fleet: &Fleet) -> Plan {
    let worker = named_worker(f);
    match f.kind {
        FaultKind::CrashWorker => {
            let idx = index(fleet, &worker);
            if fleet.life(idx) != Life::Down {
                return Plan::default();
            }
            Plan::marked(&worker, "restart", vec![Action::RestartWorker(idx)])
        }
        FaultKind::PauseWorker => {
            let idx = index(fleet, &worker);
            Plan::marked(&worker, "wake", vec![Action::WakeWorker(idx)])
        }
        FaultKind::Partition => {
            let dir = f.direction.unwrap_or_default();
            let mends = f
                .workers
                .iter()
                .map(|w| Action::Mend(index(fleet, w.get_ref()), dir))
                .collect();
            Plan::marked("network", "partition healed", mends)
        }
        FaultKind::CrashCoordinator | FaultKind::CorruptLog => Plan {
            actions: vec![Action::RecoverCoordinator],
            ..Plan::default()
        },
        FaultKind::SlowFsync => Plan::marked(
            "coordinator",
            "fsync fast again",
            vec![Action::FsyncDelay(0)],
        ),
        FaultKind::ClockStep
        | FaultKind::CancelJob
        | FaultKind::FailAppend
        | FaultKind::TornAppend => Plan::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::name_ref;
    use crate::worker::{WorkerOutput, WorkerParams};

    fn fleet() -> Fleet {
        let params = |name: &str, ordinal| WorkerParams {
            id: WorkerId::new(name),
            capabilities: vec![],
            max_concurrency: 1,
            slowness: 1.0,
            fail_rate: 0.0,
            lease_ttl_ms: 1_000,
            liveness_timeout_ms: 1_000,
            answer_timeout_ms: 1_000,
            ordinal,
        };
        Fleet::new([(params("a", 1), 0), (params("b", 2), 0)])
    }

    fn fault(kind: FaultKind) -> Fault {
        Fault {
            at_ms: 10,
            kind,
            worker: Some(name_ref("b")),
            workers: vec![name_ref("a"), name_ref("b")],
            job: Some(name_ref("j")),
            for_ms: Some(500),
            restart_after_ms: Some(700),
            delta_ms: Some(-5),
            direction: Some(Direction::ToCoordinator),
            delay_ms: Some(40),
        }
    }

    #[test]
    fn a_crash_acts_only_on_a_running_worker_and_ends_with_a_restart() {
        let mut fleet = fleet();
        let f = fault(FaultKind::CrashWorker);
        assert_eq!(start(&f, &fleet, true), Plan::default(), "not started yet");
        fleet.boot(1, 0, &mut Vec::<WorkerOutput>::new());
        let plan = start(&f, &fleet, true);
        assert_eq!(plan.actions, [Action::KillWorker(1)]);
        assert_eq!(plan.end_after_ms, Some(700));
        fleet.kill(1, &mut Vec::new());
        assert_eq!(end(&f, &fleet).actions, [Action::RestartWorker(1)]);
    }

    #[test]
    fn storage_faults_arm_corrupt_or_slow_the_coordinators_disk() {
        let fleet = fleet();
        let plan = start(&fault(FaultKind::TornAppend), &fleet, true);
        let armed = Action::ArmStorage {
            fault: ArmedFault::Tear,
            down_ms: 500,
        };
        assert_eq!(plan.actions, [armed]);
        let plan = start(&fault(FaultKind::CorruptLog), &fleet, true);
        assert_eq!(
            plan.actions,
            [Action::CorruptStorage, Action::CrashCoordinator]
        );
        let down = start(&fault(FaultKind::CorruptLog), &fleet, false);
        assert_eq!(down.actions, [Action::CorruptStorage]);
        let slow = start(&fault(FaultKind::SlowFsync), &fleet, true);
        assert_eq!(
            (slow.actions, slow.end_after_ms),
            (vec![Action::FsyncDelay(40)], Some(500))
        );
        let partition = start(&fault(FaultKind::Partition), &fleet, true);
        assert_eq!(partition.actions.len(), 2);
    }
}
