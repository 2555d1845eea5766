//! The fault schedule a swarm profile generates: worker crashes and pauses,
//! partitions, clock steps, coordinator crashes, cancellations and storage faults, each
//! at a time drawn within the fault phase.

use crate::profile::{PartitionMode, Profile};
use crate::rng::SimRng;
use crate::scenario::{name_ref, Direction, Fault, FaultKind, JobPlan, WorkerSpec};

impl Profile {
    pub(crate) fn gen_faults(
        &self,
        rng: &mut SimRng,
        workers: &[WorkerSpec],
        jobs: &[JobPlan],
    ) -> Vec<Fault> {
        let mut faults = Vec::new();
        self.worker_faults(rng, workers, &mut faults);
        if self.partition != PartitionMode::None {
            self.partitions(rng, workers, &mut faults);
        }
        for _ in 0..self.clock_steps {
            let delta =
                rng.between(1, self.lease_ttl_ms) as i64 * if rng.chance(0.5) { -1 } else { 1 };
            faults.push(Fault {
                worker: Some(name_ref(rng.pick(workers).name.clone())),
                delta_ms: Some(delta),
                ..blank(rng.below(self.fault_ms), FaultKind::ClockStep)
            });
        }
        for _ in 0..self.coordinator_crashes {
            faults.push(Fault {
                for_ms: Some(rng.between(10, 5_000)),
                ..blank(rng.below(self.fault_ms), FaultKind::CrashCoordinator)
            });
        }
        for j in jobs {
            if rng.chance(self.cancel_rate) {
                let when = j.submit_ms + rng.between(0, 10_000);
                if when < self.fault_ms {
                    faults.push(Fault {
                        job: Some(name_ref(j.name.clone())),
                        ..blank(when, FaultKind::CancelJob)
                    });
                }
            }
        }
        // Drawn after every older kind, so seeds without storage faults keep their runs.
        self.storage_faults(rng, &mut faults);
        faults.sort_by_key(|f| f.at_ms);
        faults
    }

    /// Worker crashes (some restarting) and pauses.
    fn worker_faults(&self, rng: &mut SimRng, workers: &[WorkerSpec], faults: &mut Vec<Fault>) {
        for _ in 0..self.crashes {
            let restart = rng.chance(self.restart).then(|| rng.between(100, 20_000));
            faults.push(Fault {
                worker: Some(name_ref(rng.pick(workers).name.clone())),
                restart_after_ms: restart,
                ..blank(rng.below(self.fault_ms), FaultKind::CrashWorker)
            });
        }
        for _ in 0..self.pauses {
            let len = rng.between(self.pause_ms / 2, self.pause_ms);
            faults.push(Fault {
                worker: Some(name_ref(rng.pick(workers).name.clone())),
                for_ms: Some(len),
                ..blank(rng.below(self.fault_ms), FaultKind::PauseWorker)
            });
        }
    }

    fn partitions(&self, rng: &mut SimRng, workers: &[WorkerSpec], faults: &mut Vec<Fault>) {
        for _ in 0..self.partitions {
            let cut: Vec<_> = workers
                .iter()
                .filter(|_| rng.chance(0.4))
                .map(|w| name_ref(w.name.clone()))
                .collect();
            let cut = if cut.is_empty() {
                vec![name_ref(rng.pick(workers).name.clone())]
            } else {
                cut
            };
            let direction = match self.partition {
                PartitionMode::Symmetric => Direction::Both,
                PartitionMode::Asymmetric => {
                    *rng.pick(&[Direction::ToCoordinator, Direction::FromCoordinator])
                }
                _ => *rng.pick(&[
                    Direction::Both,
                    Direction::ToCoordinator,
                    Direction::FromCoordinator,
                ]),
            };
            let len = rng.between(500, 3 * self.lease_ttl_ms);
            faults.push(Fault {
                workers: cut,
                for_ms: Some(len),
                direction: Some(direction),
                ..blank(rng.below(self.fault_ms), FaultKind::Partition)
            });
        }
    }

    /// Failed and torn appends, flipped bytes and slow fsyncs on the coordinator's disk.
    fn storage_faults(&self, rng: &mut SimRng, faults: &mut Vec<Fault>) {
        let kinds = [
            (self.append_failures, FaultKind::FailAppend),
            (self.torn_appends, FaultKind::TornAppend),
            (self.corruptions, FaultKind::CorruptLog),
        ];
        for (n, kind) in kinds {
            for _ in 0..n {
                faults.push(Fault {
                    for_ms: Some(rng.between(10, 5_000)),
                    ..blank(rng.below(self.fault_ms), kind)
                });
            }
        }
        for _ in 0..self.slow_fsyncs {
            faults.push(Fault {
                for_ms: Some(rng.between(1_000, 3 * self.lease_ttl_ms)),
                delay_ms: Some(self.fsync_ms),
                ..blank(rng.below(self.fault_ms), FaultKind::SlowFsync)
            });
        }
    }
}

/// A fault of `kind` at `at_ms` with no other field set.
fn blank(at_ms: u64, kind: FaultKind) -> Fault {
    Fault {
        at_ms,
        kind,
        worker: None,
        workers: Vec::new(),
        job: None,
        for_ms: None,
        restart_after_ms: None,
        delta_ms: None,
        direction: None,
        delay_ms: None,
    }
}
