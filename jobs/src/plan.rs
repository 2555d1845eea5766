//! The planner: a pure function from a validated job (and optionally a worker pool) to
//! a plan a person can review before the job runs. Its JSON form has a stable schema:
//! fields appear in declaration order and every list is in a documented order.

use crate::load::LoadedJob;
use crate::pool::{Pool, PoolEntry};
use crate::timing::{critical_path, timing, Timing};
use keel_engine::TaskSpec;
use serde::Serialize;
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// Names the JSON layout; a field removed or changed changes this string, while new
/// fields may be added under it.
pub const PLAN_SCHEMA: &str = "keel.plan/v1";

/// What running a job would look like: its stages, an order to run its tasks in, the
/// critical path, and warnings a reviewer should see first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan<'a> {
    /// [`PLAN_SCHEMA`], so a consumer can tell the layout.
    pub schema: &'static str,
    /// The job's settings.
    pub job: JobSummary,
    /// The pool, when one was given.
    pub pool: Option<PoolSummary>,
    /// Topological levels: a task's stage is the length of the longest dependency chain
    /// before it, so every upstream task sits in an earlier stage. A consumer of a
    /// streaming edge runs while its producer does, so it shares its producer's stage
    /// (or a later one, by its other dependencies).
    pub stages: Vec<Stage<'a>>,
    /// Every task once, ordered by stage (within it, producers before the consumers
    /// streaming from them), then priority (higher first), then estimated
    /// work on the longest chain from the task to the end (more first), then
    /// not-before delay (shorter first), then task id. None of these depends on the
    /// order of tasks in the file.
    pub schedule: Vec<&'a str>,
    /// The longest chain by estimated time.
    pub critical_path: CriticalPath<'a>,
    /// What a reviewer should look at, in a fixed order.
    pub warnings: Vec<Warning<'a>>,
}

/// The job's own settings, as the planner read them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobSummary {
    /// The job's name.
    pub name: String,
    /// Its tenant.
    pub tenant: String,
    /// Its lane, which decides the pool entries that can serve it.
    pub lane: String,
    /// Its default task priority.
    pub priority: i32,
    /// Its deadline after submission, if any.
    pub deadline_ms: Option<u64>,
    /// Its cap on tasks running at once, if any.
    pub max_concurrency: Option<u32>,
    /// How many tasks it has.
    pub tasks: u64,
    /// Tasks with an estimated duration; the others count as taking no time.
    pub estimated_tasks: u64,
    /// The tasks whose outputs are the job's result (`keel result`), in schedule order.
    pub result: Vec<String>,
    /// Whether the file names them in `job.result`; otherwise they are the sink tasks,
    /// those no other task depends on.
    pub result_named: bool,
    /// Its budgets by name (left out of JSON when it declares none).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub budgets: std::collections::BTreeMap<String, keel_engine::BudgetSpec>,
    /// The rate keys its tasks name, with how many tasks name each: the buckets the
    /// server's policy file may pace them by (left out of JSON when none is named).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub rate_keys: std::collections::BTreeMap<String, u64>,
    /// The tasks whose output streams keep only their last frames, with how many they
    /// keep (1: the newest only); every other task's stream keeps every frame (left
    /// out of JSON when no task's is bounded).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub bounded_streams: std::collections::BTreeMap<String, u64>,
    /// Streaming edges, by consumer in task order: the consumer runs beside its
    /// producer and reads its frames (left out of JSON when there are none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stream_edges: Vec<PlanEdge>,
}

/// A streaming edge as the plan shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlanEdge {
    /// The producer's key.
    pub from: String,
    /// The consumer's key.
    pub to: String,
    /// `fifo`, `bounded`, `newest` or `broadcast`.
    pub policy: &'static str,
    /// A bounded edge's capacity in frames.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    /// What a bounded edge's full producer meets: `block`, `drop_oldest` or `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_full: Option<&'static str>,
}

impl PlanEdge {
    fn of(to: &str, e: &keel_engine::StreamEdge) -> PlanEdge {
        let (capacity, on_full) = match e.policy {
            keel_engine::EdgePolicy::Bounded { capacity, on_full } => {
                (Some(capacity), Some(on_full.name()))
            }
            _ => (None, None),
        };
        PlanEdge {
            from: e.from.clone(),
            to: to.to_string(),
            policy: e.policy.name(),
            capacity,
            on_full,
        }
    }
}

/// The worker pool the plan was made against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolSummary {
    /// Workers across all entries.
    pub workers: u64,
    /// Task slots across all workers.
    pub slots: u64,
    /// The entries in pool file order.
    pub entries: Vec<PoolEntry>,
}

/// One topological level of the job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stage<'a> {
    /// Its level, from 0.
    pub index: u32,
    /// How many tasks it holds.
    pub width: u64,
    /// Tasks of this stage that can run at once: the width, bounded by the job's
    /// `max_concurrency` and by the slots of pool entries able to run any of them.
    pub max_parallel: u64,
    /// What sets `max_parallel`.
    pub limited_by: Limit,
    /// One entry per distinct capability set, sorted by the set.
    pub needs: Vec<Need>,
    /// The stage's tasks in schedule order.
    pub tasks: Vec<&'a str>,
}

/// What bounds a stage's parallelism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// Nothing but the number of tasks in the stage.
    Width,
    /// The job's `max_concurrency`.
    MaxConcurrency,
    /// The slots of the pool entries able to run its tasks.
    Pool,
}

/// Tasks of a stage that need the same capabilities, and who can run them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Need {
    /// Sorted; empty when the tasks run anywhere.
    pub capabilities: Vec<String>,
    /// How many of the stage's tasks need them.
    pub tasks: u64,
    /// Pool entries that serve the job's lane with all these capabilities, in pool
    /// file order; `None` when no pool was given.
    pub served_by: Option<Vec<String>>,
}

/// The chain of tasks with the most estimated work, which bounds the job's duration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CriticalPath<'a> {
    /// Estimated time from submission until the job can finish with unlimited workers.
    pub length_ms: u64,
    /// Its tasks from first to last.
    pub steps: Vec<PathStep<'a>>,
}

/// One task on the critical path, with its earliest start and finish.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathStep<'a> {
    /// The task's key.
    pub task: &'a str,
    /// Earliest start after submission.
    pub start_ms: u64,
    /// Earliest finish after submission.
    pub finish_ms: u64,
}

/// Something in the job that will not run as its author probably expects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Warning<'a> {
    /// No pool entry serves the lane with these capabilities; tasks in schedule order.
    NoWorkerCanRun {
        /// The job's lane.
        lane: String,
        /// The capabilities no entry offers together.
        capabilities: Vec<String>,
        /// The tasks that need them.
        tasks: Vec<&'a str>,
    },
    /// The job's cap lets fewer tasks of a stage run at once than the stage holds.
    CapSerialisesStage {
        /// The stage's index.
        stage: u32,
        /// How many tasks it holds.
        width: u64,
        /// The job's cap.
        max_concurrency: u32,
    },
    /// The deadline is shorter than the critical path: the job cannot finish in time.
    DeadlineBeforeCriticalPath {
        /// The job's deadline.
        deadline_ms: u64,
        /// The critical path's length.
        critical_path_ms: u64,
    },
}

impl Plan<'_> {
    /// The plan as pretty-printed JSON in schema field order.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()))
    }
}

/// Plans `job`, matching its capability needs against `pool` when given.
pub fn plan<'a>(job: &'a LoadedJob, pool: Option<&Pool>) -> Plan<'a> {
    let spec = job.spec();
    let tasks = &spec.tasks;
    let timing = timing(job);
    let order = schedule_order(job, &timing);
    let caps = sorted_capabilities(tasks);
    let serving = |caps: &[String]| serving(pool, &spec.lane, caps);
    let stages = stages(job, (&order, &timing.stage), &caps, &serving);
    let path = critical_path(job, &timing);
    let length_ms = path.last().map_or(0, |&i| timing.finish[i as usize]);
    let warnings = warnings(
        job,
        pool.is_some(),
        &order,
        &caps,
        &stages,
        length_ms,
        &serving,
    );
    Plan {
        schema: PLAN_SCHEMA,
        job: summary(job, &order),
        pool: pool.map(|p| PoolSummary {
            workers: p.workers(),
            slots: p.slots(),
            entries: p.entries.clone(),
        }),
        schedule: order.iter().map(|&i| tasks[i].key.as_str()).collect(),
        stages,
        critical_path: CriticalPath {
            length_ms,
            steps: path
                .iter()
                .map(|&i| PathStep {
                    task: &tasks[i as usize].key,
                    start_ms: timing.start[i as usize],
                    finish_ms: timing.finish[i as usize],
                })
                .collect(),
        },
        warnings,
    }
}

/// What the plan says of the job as a whole; `order` is the schedule order.
fn summary(job: &LoadedJob, order: &[usize]) -> JobSummary {
    let spec = job.spec();
    let tasks = &spec.tasks;
    JobSummary {
        name: spec.name.clone(),
        tenant: spec.tenant.clone(),
        lane: spec.lane.clone(),
        priority: spec.priority,
        deadline_ms: spec.deadline_ms,
        max_concurrency: spec.max_concurrency,
        tasks: tasks.len() as u64,
        estimated_tasks: tasks.iter().filter(|t| t.estimated_ms.is_some()).count() as u64,
        result: order
            .iter()
            .filter(|&&i| job.valid().result.binary_search(&(i as u32)).is_ok())
            .map(|&i| tasks[i].key.clone())
            .collect(),
        result_named: !spec.result.is_empty(),
        budgets: spec.budgets.clone(),
        rate_keys: tasks.iter().filter_map(|t| t.rate_key.clone()).fold(
            std::collections::BTreeMap::new(),
            |mut keys, key| {
                *keys.entry(key).or_default() += 1;
                keys
            },
        ),
        bounded_streams: tasks
            .iter()
            .filter_map(|t| Some((t.key.clone(), t.stream.keeps()?)))
            .collect(),
        stream_edges: tasks
            .iter()
            .flat_map(|t| t.stream_from.iter().map(|e| PlanEdge::of(&t.key, e)))
            .collect(),
    }
}

/// Task indexes in schedule order (see `Plan::schedule`), from each task's stage and
/// its estimated work on the longest chain from it to the end (`tail`).
fn schedule_order(job: &LoadedJob, t: &Timing) -> Vec<usize> {
    let spec = job.spec();
    let mut keyed: Vec<_> = spec
        .tasks
        .iter()
        .enumerate()
        .map(|(i, task)| {
            let key = (
                (t.stage[i], t.within[i]),
                Reverse(task.priority.unwrap_or(spec.priority)),
                Reverse(t.tail[i]),
                task.delay_ms,
                task.key.as_str(),
            );
            (key, i)
        })
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// Each task's capabilities, sorted: capability sets compare sorted, and most specs
/// list them sorted already.
fn sorted_capabilities(tasks: &[TaskSpec]) -> Vec<Cow<'_, [String]>> {
    tasks
        .iter()
        .map(|t| match t.capabilities.is_sorted() {
            true => Cow::Borrowed(t.capabilities.as_slice()),
            false => {
                let mut sorted = t.capabilities.clone();
                sorted.sort_unstable();
                Cow::Owned(sorted)
            }
        })
        .collect()
}

/// The pool entries serving `lane` with `caps`; `None` without a pool.
fn serving<'p>(pool: Option<&'p Pool>, lane: &str, caps: &[String]) -> Option<Vec<&'p PoolEntry>> {
    Some(
        pool?
            .entries
            .iter()
            .filter(|e| e.serves(lane, caps))
            .collect(),
    )
}

type Serving<'s, 'p> = &'s dyn Fn(&[String]) -> Option<Vec<&'p PoolEntry>>;

/// The stages of the tasks in schedule `order`, each task in stage `stage_of[i]`, each
/// stage with its needs and parallelism.
fn stages<'a>(
    job: &'a LoadedJob,
    (order, stage_of): (&[usize], &[u32]),
    caps: &[Cow<'_, [String]>],
    serving: Serving<'_, '_>,
) -> Vec<Stage<'a>> {
    let spec = job.spec();
    let mut stages: Vec<Stage> = Vec::new();
    let mut needs: BTreeMap<&[String], u64> = BTreeMap::new();
    for (pos, &i) in order.iter().enumerate() {
        let index = stage_of[i];
        if stages.last().is_none_or(|s| s.index != index) {
            stages.push(Stage {
                index,
                width: 0,
                max_parallel: 0,
                limited_by: Limit::Width,
                needs: Vec::new(),
                tasks: Vec::new(),
            });
        }
        let Some(stage) = stages.last_mut() else {
            continue;
        };
        stage.width += 1;
        stage.tasks.push(&spec.tasks[i].key);
        *needs.entry(&caps[i]).or_default() += 1;
        let stage_ends = order
            .get(pos + 1)
            .is_none_or(|&next| stage_of[next] != index);
        if stage_ends {
            finish_stage(
                stage,
                std::mem::take(&mut needs),
                spec.max_concurrency,
                serving,
            );
        }
    }
    stages
}

/// Warnings in a fixed order: capability sets no pool entry serves (with a pool),
/// stages the job's cap serialises, a deadline shorter than the critical path.
fn warnings<'a>(
    job: &'a LoadedJob,
    with_pool: bool,
    order: &[usize],
    caps: &[Cow<'_, [String]>],
    stages: &[Stage<'a>],
    length_ms: u64,
    serving: Serving<'_, '_>,
) -> Vec<Warning<'a>> {
    let spec = job.spec();
    let mut warnings = Vec::new();
    if with_pool {
        let mut by_caps: BTreeMap<&[String], Vec<&str>> = BTreeMap::new();
        for &i in order {
            by_caps
                .entry(&caps[i])
                .or_default()
                .push(&spec.tasks[i].key);
        }
        for (capabilities, ids) in by_caps {
            if serving(capabilities).is_some_and(|s| s.is_empty()) {
                warnings.push(Warning::NoWorkerCanRun {
                    lane: spec.lane.clone(),
                    capabilities: capabilities.to_vec(),
                    tasks: ids,
                });
            }
        }
    }
    if let Some(cap) = spec.max_concurrency {
        for s in stages.iter().filter(|s| s.width > u64::from(cap)) {
            warnings.push(Warning::CapSerialisesStage {
                stage: s.index,
                width: s.width,
                max_concurrency: cap,
            });
        }
    }
    if let Some(deadline_ms) = spec.deadline_ms.filter(|&d| d < length_ms) {
        warnings.push(Warning::DeadlineBeforeCriticalPath {
            deadline_ms,
            critical_path_ms: length_ms,
        });
    }
    warnings
}

/// Fills in a stage's capability needs and how many of its tasks can run at once.
fn finish_stage<'p>(
    stage: &mut Stage<'_>,
    needs: BTreeMap<&[String], u64>,
    max_concurrency: Option<u32>,
    serving: Serving<'_, 'p>,
) {
    let mut limit = (stage.width, Limit::Width);
    if let Some(cap) = max_concurrency.map(u64::from).filter(|&c| c < limit.0) {
        limit = (cap, Limit::MaxConcurrency);
    }
    let mut usable: BTreeMap<&str, u64> = BTreeMap::new();
    let mut any_pool = false;
    for (capabilities, count) in needs {
        let served = serving(capabilities);
        if let Some(entries) = &served {
            any_pool = true;
            usable.extend(entries.iter().map(|e| (e.name.as_str(), e.slots())));
        }
        stage.needs.push(Need {
            capabilities: capabilities.to_vec(),
            tasks: count,
            served_by: served.map(|es| es.iter().map(|e| e.name.clone()).collect()),
        });
    }
    let slots: u64 = usable.values().sum();
    if any_pool && slots < limit.0 {
        limit = (slots, Limit::Pool);
    }
    (stage.max_parallel, stage.limited_by) = limit;
}
