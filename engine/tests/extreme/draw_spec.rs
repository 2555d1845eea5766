//! The job and schedule specs a step submits, every number in them from its draw.

use super::super::{EdgeDraw, Group, JobDraw, Step, TaskDraw};
use super::{subset, Seen, CAPS, CRONS, LANES, RATE_KEYS, TENANTS};
use keel_engine::*;

impl Seen {
    pub(super) fn add_schedule(&self, step: &Step) -> Input {
        let Step::AddSchedule {
            name,
            job,
            every,
            cron,
            overlap,
            misfire,
            catch_up,
            grace_ms,
        } = step
        else {
            unreachable!("add_schedule is called on AddSchedule steps");
        };
        let trigger = match cron {
            Some(i) => {
                let (expr, zone) = CRONS[*i as usize % CRONS.len()];
                Trigger::Cron {
                    expr: expr.into(),
                    zone: zone.into(),
                }
            }
            None => Trigger::Every {
                interval_ms: every.get(),
            },
        };
        let spec = ScheduleSpec {
            name: format!("s{}", name % 3),
            job: self.job(job),
            trigger,
            overlap: [Overlap::Skip, Overlap::QueueOne, Overlap::Allow][*overlap as usize % 3],
            misfire: match misfire % 3 {
                0 => Misfire::RunOnce,
                1 => Misfire::RunAll {
                    max: catch_up.get(),
                },
                _ => Misfire::Skip,
            },
            grace_ms: grace_ms.get(),
        };
        Input::Client(ClientCommand::Schedule(ScheduleCommand::Add(Box::new(
            spec,
        ))))
    }

    pub(super) fn job(&self, d: &JobDraw) -> JobSpec {
        let tasks = d.tasks.iter().take(6).enumerate();
        let tasks = tasks.map(|(i, t)| self.task(i, t));
        JobSpec {
            name: format!("j{}", d.name % 8),
            tenant: TENANTS[d.tenant as usize % TENANTS.len()].to_string(),
            lane: LANES[d.lane as usize % LANES.len()].to_string(),
            priority: d.priority.get(),
            deadline_ms: d.deadline_ms.map(|v| v.get()),
            max_concurrency: d.max_concurrency.map(|v| v.get()),
            tasks: tasks.collect(),
            result: Vec::new(),
            budgets: Default::default(),
        }
    }

    /// `d` with streaming edges: each consumer streams from a task by index, and (two
    /// draws in three) a producer an edge needs every frame of keeps every frame, so
    /// that some such jobs are admitted (a consumer streaming from itself or from a
    /// task it waits for, from a stream that lets frames go, a repeated edge, a cycle
    /// or a capacity of 0 are refused, as they should be).
    pub(super) fn streaming(&self, d: &JobDraw, edges: &[EdgeDraw]) -> JobSpec {
        let mut spec = self.job(d);
        let n = spec.tasks.len();
        for e in edges.iter().take(8).filter(|_| n > 0) {
            let policy = match e.policy % 4 {
                0 => EdgePolicy::Fifo,
                1 => EdgePolicy::Bounded {
                    capacity: e.capacity.get(),
                    on_full: [OnFull::Block, OnFull::DropOldest, OnFull::Error]
                        [e.on_full as usize % 3],
                },
                2 => EdgePolicy::Newest,
                _ => EdgePolicy::Broadcast,
            };
            let producer = e.producer as usize % n;
            if policy.needs_every_frame() && e.on_full < 2 {
                spec.tasks[producer].stream = StreamMode::Durable;
            }
            spec.tasks[e.consumer as usize % n]
                .stream_from
                .push(StreamEdge {
                    from: format!("t{producer}"),
                    policy,
                });
        }
        spec
    }

    /// Task `i` of a job, depending on earlier tasks only (a spec with a cycle or a
    /// repeated dependency is refused before any number is looked at).
    pub(super) fn task(&self, i: usize, t: &TaskDraw) -> TaskSpec {
        let mut upstream: Vec<String> = t
            .deps
            .iter()
            .take(4)
            .filter(|_| i > 0)
            .map(|&d| format!("t{}", d as usize % i.max(1)))
            .collect();
        upstream.sort();
        upstream.dedup();
        let deps = (!upstream.is_empty()).then(|| DepGroup {
            kind: match t.group {
                Group::AllOf => GroupKind::AllOf,
                Group::AnyOf => GroupKind::AnyOf,
                Group::Quorum(k) => GroupKind::Quorum(k.get()),
            },
            upstream,
            on_unsatisfied: if t.cancel_on_unsatisfied {
                UnsatisfiedPolicy::Cancel
            } else {
                UnsatisfiedPolicy::Skip
            },
        });
        TaskSpec {
            key: format!("t{i}"),
            payload: self.bytes(t.payload),
            capabilities: subset(&CAPS, t.caps),
            deps,
            retry: RetryPolicy {
                max_attempts: t.max_attempts.get(),
                backoff_base_ms: t.backoff_base_ms.get(),
                backoff_factor: t.backoff_factor.get(),
                backoff_max_ms: t.backoff_max_ms.get(),
                jitter_pct: t.jitter_pct,
            },
            attempt_timeout_ms: t.attempt_timeout_ms.map(|v| v.get()),
            delay_ms: t.delay_ms.get(),
            priority: t.priority.map(|v| v.get()),
            allow_failure: t.allow_failure,
            estimated_ms: t.estimated_ms.map(|v| v.get()),
            rate_key: t
                .rate_key
                .map(|k| RATE_KEYS[k as usize % RATE_KEYS.len()].to_string()),
            stream: t
                .stream
                .map_or(StreamMode::Durable, |frames| StreamMode::Bounded {
                    frames: frames.get(),
                }),
            stream_from: Vec::new(),
        }
    }
}
