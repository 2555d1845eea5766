//! The workload a swarm profile generates: its workers, its jobs (tasks, dependency
//! shapes, capabilities, failures, rate keys) and the schedule its schedule knobs add.

use crate::profile::{JobShape, Profile, CAPS, RATE_KEY};
use crate::rng::{SimRng, Stream};
use crate::scenario::SchedulePlan;
use crate::scenario::{name_ref, EdgePlan, GroupSpec, JobPlan, TaskPlan, WorkerSpec};

impl Profile {
    /// The schedule the schedule knobs add: one short task per run, from the start of
    /// the run to the end of the fault phase, so crashes and partitions hit its runs.
    pub(crate) fn gen_schedules(&self) -> Vec<SchedulePlan> {
        if self.schedule_every_ms == 0 {
            return Vec::new();
        }
        let task = TaskPlan {
            key: "tick".into(),
            duration_ms: 200,
            capabilities: Vec::new(),
            after: Vec::new(),
            group: GroupSpec::AllOf,
            quorum: None,
            max_attempts: 3,
            backoff_ms: 100,
            fail_attempts: 0,
            allow_failure: false,
            priority: None,
            rate_key: None,
            usage: None,
            waits: false,
            frames: 0,
            keep: 0,
            stream_from: Vec::new(),
            edge: EdgePlan::Fifo,
            capacity: None,
        };
        vec![SchedulePlan {
            name: "beat".into(),
            add_ms: 0,
            delete_ms: self.fault_ms,
            every_ms: Some(self.schedule_every_ms),
            cron: None,
            zone: None,
            overlap: Some(self.schedule_overlap.into()),
            misfire: Some(self.schedule_misfire.into()),
            catch_up: Some(5),
            grace_ms: Some(2_000),
            tasks: vec![task],
        }]
    }

    pub(crate) fn gen_workers(&self, rng: &mut SimRng) -> Vec<WorkerSpec> {
        (0..self.workers)
            .map(|i| {
                let caps = CAPS[..self.capabilities as usize]
                    .iter()
                    .filter(|_| rng.chance(0.5))
                    .map(|c| c.to_string())
                    .collect();
                let flaky = rng.chance(self.flaky_fraction);
                let slow = rng.chance(self.slow_fraction);
                WorkerSpec {
                    name: format!("w{}", i + 1),
                    capabilities: caps,
                    max_concurrency: self.max_concurrency,
                    slowness: if slow { 1.0 + rng.unit() * 9.0 } else { 1.0 },
                    fail_rate: if flaky { self.flaky_rate } else { 0.0 },
                    drift_ppm: if self.drift_ppm == 0 {
                        0
                    } else {
                        rng.between(0, self.drift_ppm.unsigned_abs()) as i64
                            * self.drift_ppm.signum()
                    },
                    join_ms: if i < self.late_workers {
                        rng.below(self.fault_ms)
                    } else {
                        0
                    },
                }
            })
            .collect()
    }

    pub(crate) fn gen_jobs(&self, rng: &mut SimRng, workers: &[WorkerSpec]) -> Vec<JobPlan> {
        let streams = &mut SimRng::new(self.seed, Stream::Streams);
        let edges = &mut SimRng::new(self.seed, Stream::Edges);
        (0..self.jobs)
            .map(|j| {
                let shape = match self.shape {
                    JobShape::Mixed => *rng.pick(&[
                        JobShape::Independent,
                        JobShape::Chain,
                        JobShape::FanOutIn,
                        JobShape::Groups,
                    ]),
                    s => s,
                };
                let n = self.tasks_per_job as usize;
                let mut tasks: Vec<TaskPlan> = (0..n)
                    .map(|i| self.gen_task(rng, streams, workers, (shape, i, n)))
                    .collect();
                if self.edge_rate > 0.0 {
                    add_edges(&mut tasks, edges, self.edge_rate, self.job_caps);
                }
                JobPlan {
                    name: format!("job{}", j + 1),
                    submit_ms: rng.below(self.fault_ms / 2),
                    tenant: None,
                    max_concurrency: self.job_caps.then(|| rng.between(1, 3) as u32),
                    deadline_ms: None,
                    result: Vec::new(),
                    budgets: Default::default(),
                    tasks,
                }
            })
            .collect()
    }

    /// Task `i` of `n` in a job of `shape`; its frames drawn from `streams`.
    fn gen_task(
        &self,
        rng: &mut SimRng,
        streams: &mut SimRng,
        workers: &[WorkerSpec],
        (shape, i, n): (JobShape, usize, usize),
    ) -> TaskPlan {
        // Required capabilities come from some worker, so the task can run.
        let caps = if rng.chance(0.5) {
            rng.pick(workers).capabilities.clone()
        } else {
            Vec::new()
        };
        let (after, group, quorum) = deps(rng, shape, i, n);
        // From a stream of its own, so every seed keeps its jobs.
        let (frames, keep) = stream_of(streams, self.stream_rate);
        TaskPlan {
            key: format!("t{i}"),
            duration_ms: rng.between(50, 3_000),
            capabilities: caps,
            after: after.into_iter().map(name_ref).collect(),
            group,
            quorum,
            max_attempts: rng.between(1, 4) as u32,
            backoff_ms: rng.between(10, 1_000),
            fail_attempts: if rng.chance(self.poison_rate) {
                rng.between(1, 5) as u8
            } else {
                0
            },
            allow_failure: rng.chance(0.1),
            priority: rng.chance(0.2).then(|| rng.between(0, 10) as i32),
            // Drawn only when paced, so unpaced seeds keep their jobs.
            rate_key: (self.rate_per_s > 0 && rng.chance(0.5)).then(|| RATE_KEY.to_string()),
            usage: None,
            // Drawn only when tasks wait, so other seeds keep their jobs.
            waits: self.wait_rate > 0.0 && rng.chance(self.wait_rate),
            // From a stream of its own, so every seed keeps its jobs.
            frames,
            keep,
            stream_from: Vec::new(),
            edge: EdgePlan::Fifo,
            capacity: None,
        }
    }
}

/// Streaming edges: a share `rate` of the tasks whose dependencies are among their
/// predecessor's (so the predecessor is not one of them, even through others) read
/// that predecessor's stream, which then emits frames if it did not, through a policy
/// drawn from those its stream can serve (every frame only from a durable stream); no
/// `block` edge where a job may run one task at a time.
fn add_edges(tasks: &mut [TaskPlan], edges: &mut SimRng, rate: f64, job_caps: bool) {
    for i in 1..tasks.len() {
        let (before, rest) = tasks.split_at_mut(i);
        let (producer, consumer) = (&mut before[i - 1], &rest[0]);
        let unrelated = consumer
            .after
            .iter()
            .all(|a| a.get_ref() != &producer.key && producer.after.contains(a));
        if !unrelated || !edges.chance(rate) {
            continue;
        }
        if producer.frames == 0 {
            producer.frames = edges.between(1, 4) as u8;
        }
        let producer = &tasks[i - 1];
        let durable = producer.keep == 0;
        let choices: &[EdgePlan] = match (durable, job_caps) {
            (false, _) => &[EdgePlan::Newest, EdgePlan::Broadcast],
            (true, true) => &[
                EdgePlan::Fifo,
                EdgePlan::Newest,
                EdgePlan::Broadcast,
                EdgePlan::DropOldest,
                EdgePlan::Error,
            ],
            (true, false) => &[
                EdgePlan::Fifo,
                EdgePlan::Newest,
                EdgePlan::Broadcast,
                EdgePlan::Block,
                EdgePlan::DropOldest,
                EdgePlan::Error,
            ],
        };
        let key = producer.key.clone();
        let consumer = &mut tasks[i];
        consumer.stream_from = vec![key];
        consumer.edge = *edges.pick(choices);
        let bounded = matches!(
            consumer.edge,
            EdgePlan::Block | EdgePlan::DropOldest | EdgePlan::Error
        );
        consumer.capacity = bounded.then(|| edges.between(1, 3) as u32);
    }
}

/// Frames a task emits and how many its stream keeps: a share `rate` of tasks emit 1
/// to 4 frames, and half of those keep only the newest or the last 2 or 3.
fn stream_of(streams: &mut SimRng, rate: f64) -> (u8, u8) {
    if !streams.chance(rate) {
        return (0, 0);
    }
    let frames = streams.between(1, 4) as u8;
    let keep = if streams.chance(0.5) {
        streams.between(1, 3) as u8
    } else {
        0
    };
    (frames, keep)
}

/// Upstream keys, group kind and quorum for task `i` of `n` in a job of `shape`.
fn deps(
    rng: &mut SimRng,
    shape: JobShape,
    i: usize,
    n: usize,
) -> (Vec<String>, GroupSpec, Option<u32>) {
    let none = (Vec::new(), GroupSpec::AllOf, None);
    match shape {
        JobShape::Independent | JobShape::Mixed => none,
        JobShape::Chain if i > 0 => (vec![format!("t{}", i - 1)], GroupSpec::AllOf, None),
        // The last task joins the middle ones; the middle ones fan out from the first.
        JobShape::FanOutIn if i >= 2 && i + 1 == n => (
            (1..i).map(|k| format!("t{k}")).collect(),
            GroupSpec::AllOf,
            None,
        ),
        JobShape::FanOutIn if i > 0 => (vec!["t0".into()], GroupSpec::AllOf, None),
        JobShape::Groups if i >= 2 => {
            let ups: Vec<String> = (0..i)
                .filter(|_| rng.chance(0.5))
                .map(|k| format!("t{k}"))
                .collect();
            let ups = if ups.is_empty() {
                vec![format!("t{}", i - 1)]
            } else {
                ups
            };
            let k = ups.len() as u32;
            match rng.below(3) {
                0 => (ups, GroupSpec::AllOf, None),
                1 => (ups, GroupSpec::AnyOf, None),
                _ => (
                    ups,
                    GroupSpec::Quorum,
                    Some(rng.between(1, k as u64) as u32),
                ),
            }
        }
        _ => none,
    }
}
