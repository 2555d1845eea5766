//! The checker's shadow of the coordinator: who holds which task (an offered grant or a
//! lease), how many tasks each worker, job and tenant holds, which tasks committed, and
//! how every attempt ended. It is rebuilt only from released replies and effects, so it
//! is what an outside observer could know.

use keel_engine::{Effect, Fence, GrantId, JobId, JobSpec, TaskId, Time, WorkerId};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Hold {
    Offered {
        worker: WorkerId,
        grant: GrantId,
    },
    Leased {
        worker: WorkerId,
        fence: Fence,
        since: Time,
    },
}

struct TaskInfo {
    job: JobId,
    caps: Vec<String>,
    hold: Option<Hold>,
    committed: bool,
    finished: bool,
}

struct JobInfo {
    name: String,
    tenant: String,
    cap: Option<u32>,
    active: u32,
    tasks: u32,
    finished: u32,
}

#[derive(Default)]
struct WorkerInfo {
    caps: BTreeSet<String>,
    max: u32,
    active: u32,
    blacklisted: bool,
    ordinal: u32,
}

/// One attempt as it ran: a bar on the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bar {
    pub worker: String,
    pub task: TaskId,
    pub attempt: u32,
    pub start: Time,
    pub end: Time,
    /// `succeeded`, `failed`, or the reason the lease ended.
    pub outcome: &'static str,
}

#[derive(Default)]
pub struct Ledger {
    tasks: BTreeMap<TaskId, TaskInfo>,
    jobs: BTreeMap<JobId, JobInfo>,
    job_ids: BTreeMap<String, JobId>,
    outcomes: BTreeMap<String, &'static str>,
    workers: BTreeMap<WorkerId, WorkerInfo>,
    grants: BTreeMap<GrantId, TaskId>,
    tenant_active: BTreeMap<String, u32>,
    tenant_caps: BTreeMap<String, u32>,
    totals: BTreeMap<(&'static str, &'static str), u64>,
    per_worker: BTreeMap<(&'static str, &'static str, u32), u64>,
    pub bars: Vec<Bar>,
}

type Flags = Vec<(&'static str, String)>;

impl Ledger {
    pub fn new(tenant_caps: BTreeMap<String, u32>) -> Ledger {
        Ledger {
            tenant_caps,
            ..Ledger::default()
        }
    }

    pub fn add_job(&mut self, job: JobId, first: TaskId, spec: &JobSpec) {
        for (i, t) in spec.tasks.iter().enumerate() {
            let info = TaskInfo {
                job,
                caps: t.capabilities.clone(),
                hold: None,
                committed: false,
                finished: false,
            };
            self.tasks.insert(TaskId(first.0 + i as u64), info);
        }
        self.job_ids.insert(spec.name.clone(), job);
        let info = JobInfo {
            name: spec.name.clone(),
            tenant: spec.tenant.clone(),
            cap: spec.max_concurrency,
            active: 0,
            tasks: spec.tasks.len() as u32,
            finished: 0,
        };
        self.jobs.insert(job, info);
    }

    pub fn job_rejected(&mut self, name: &str) {
        self.outcomes.entry(name.to_string()).or_insert("rejected");
    }

    pub fn job_done(&mut self, job: JobId, outcome: &'static str) -> bool {
        let Some(j) = self.jobs.get(&job) else {
            return true;
        };
        self.outcomes.insert(j.name.clone(), outcome).is_none()
    }

    pub fn job_outcome(&self, name: &str) -> Option<&'static str> {
        self.outcomes.get(name).copied()
    }

    pub fn outcomes(&self) -> &BTreeMap<String, &'static str> {
        &self.outcomes
    }

    /// Jobs whose admission was acknowledged and which have not ended.
    pub fn open_jobs(&self) -> impl Iterator<Item = (JobId, &str)> {
        self.jobs
            .iter()
            .filter(|(_, j)| !self.outcomes.contains_key(&j.name))
            .map(|(id, j)| (*id, j.name.as_str()))
    }

    pub fn job_progress(&self, name: &str) -> String {
        match self.job_ids.get(name).and_then(|id| self.jobs.get(id)) {
            Some(j) => format!(
                "{}/{} tasks finished, {} held",
                j.finished, j.tasks, j.active
            ),
            None => "never admitted".into(),
        }
    }

    pub fn register(&mut self, worker: &WorkerId, caps: &[String], max: u32) {
        let n = self.workers.len() as u32;
        let w = self
            .workers
            .entry(worker.clone())
            .or_insert_with(|| WorkerInfo {
                ordinal: n,
                ..WorkerInfo::default()
            });
        w.caps = caps.iter().cloned().collect();
        w.max = max;
        // A new instance keeps the worker's blacklist: only WorkerReadmitted ends it.
    }

    pub fn blacklist(&mut self, worker: &WorkerId, on: bool) {
        if let Some(w) = self.workers.get_mut(worker) {
            w.blacklisted = on;
        }
    }

    /// A grant was offered: checks the routing rules, then records the hold.
    pub fn offer(&mut self, worker: &WorkerId, grant: GrantId, job: JobId, task: TaskId) -> Flags {
        let mut flags = Flags::new();
        let Some(t) = self.tasks.get(&task) else {
            flags.push((
                "unknown_task",
                format!("grant {grant} offers unknown task {task}"),
            ));
            return flags;
        };
        if let Some(h) = &t.hold {
            flags.push((
                "double_grant",
                format!("{task} offered to {worker} by {grant} while held: {h:?}"),
            ));
        }
        match self.workers.get(worker) {
            None => flags.push((
                "unknown_worker",
                format!("{grant} offered to unregistered {worker}"),
            )),
            Some(w) => {
                if w.blacklisted {
                    flags.push((
                        "blacklisted_grant",
                        format!("{grant} for {task} offered to blacklisted {worker}"),
                    ));
                }
                if let Some(c) = t.caps.iter().find(|c| !w.caps.contains(*c)) {
                    flags.push((
                        "capability",
                        format!("{task} needs {c:?} but was offered to {worker}"),
                    ));
                }
                if w.active >= w.max {
                    flags.push((
                        "worker_cap",
                        format!(
                            "{worker} already holds {} of {} when offered {task}",
                            w.active, w.max
                        ),
                    ));
                }
            }
        }
        if let Some(j) = self.jobs.get(&job) {
            if j.cap.is_some_and(|c| j.active >= c) {
                flags.push((
                    "job_cap",
                    format!(
                        "job {} holds {} tasks, cap {:?}, when offered {task}",
                        j.name, j.active, j.cap
                    ),
                ));
            }
            let held = self.tenant_active.get(&j.tenant).copied().unwrap_or(0);
            if let Some(cap) = self.tenant_caps.get(&j.tenant).filter(|c| held >= **c) {
                flags.push((
                    "tenant_cap",
                    format!(
                        "tenant {} holds {held} tasks, cap {cap}, when offered {task}",
                        j.tenant
                    ),
                ));
            }
        }
        if flags.is_empty() {
            self.hold(
                task,
                Hold::Offered {
                    worker: worker.clone(),
                    grant,
                },
            );
            self.grants.insert(grant, task);
        }
        flags
    }

    fn hold(&mut self, task: TaskId, hold: Hold) {
        let Some(t) = self.tasks.get_mut(&task) else {
            return;
        };
        let worker = match &hold {
            Hold::Offered { worker, .. } | Hold::Leased { worker, .. } => worker,
        };
        if t.hold.is_none() {
            if let Some(w) = self.workers.get_mut(worker) {
                w.active += 1;
            }
            if let Some(j) = self.jobs.get_mut(&t.job) {
                j.active += 1;
                match self.tenant_active.get_mut(&j.tenant) {
                    Some(n) => *n += 1,
                    None => {
                        self.tenant_active.insert(j.tenant.clone(), 1);
                    }
                }
            }
        }
        t.hold = Some(hold);
    }

    /// A grant became a lease; it must be the grant this worker was offered.
    pub fn lease(
        &mut self,
        now: Time,
        worker: &WorkerId,
        grant: GrantId,
        fence: Fence,
    ) -> Result<(), String> {
        let ok = matches!(self.tasks.get(&fence.task).and_then(|t| t.hold.as_ref()),
            Some(Hold::Offered { worker: w, grant: g }) if w == worker && *g == grant);
        self.grants.remove(&grant);
        if !ok {
            return Err(format!(
                "{worker} got lease {fence} from {grant}, which it does not hold ({})",
                self.describe_hold(fence.task)
            ));
        }
        self.hold(
            fence.task,
            Hold::Leased {
                worker: worker.clone(),
                fence,
                since: now,
            },
        );
        Ok(())
    }

    pub fn release_grant(&mut self, grant: GrantId) {
        let Some(task) = self.grants.remove(&grant) else {
            return;
        };
        let offered = matches!(self.tasks.get(&task).and_then(|t| t.hold.as_ref()), Some(Hold::Offered { grant: g, .. }) if *g == grant);
        if offered {
            self.clear_task(0, task, "released");
        }
    }

    pub fn holds_lease(&self, fence: Fence) -> bool {
        matches!(self.tasks.get(&fence.task).and_then(|t| t.hold.as_ref()), Some(Hold::Leased { fence: f, .. }) if *f == fence)
    }

    pub fn describe_hold(&self, task: TaskId) -> String {
        match self.tasks.get(&task).map(|t| &t.hold) {
            None => format!("{task} unknown"),
            Some(None) => format!("{task} held by nobody"),
            Some(Some(Hold::Offered { worker, grant })) => {
                format!("{task} offered to {worker} by {grant}")
            }
            Some(Some(Hold::Leased { worker, fence, .. })) => {
                format!("{task} leased to {worker} as {fence}")
            }
        }
    }

    pub fn end_lease(&mut self, now: Time, fence: Fence, outcome: &'static str) {
        if self.holds_lease(fence) {
            self.clear_task(now, fence.task, outcome);
        }
    }

    /// The task is held by nobody now; a lease that ends closes its timeline bar.
    pub fn clear_task(&mut self, now: Time, task: TaskId, outcome: &'static str) {
        let Some(t) = self.tasks.get_mut(&task) else {
            return;
        };
        let Some(hold) = t.hold.take() else { return };
        let job = t.job;
        let worker = match hold {
            Hold::Offered { worker, grant } => {
                self.grants.remove(&grant);
                worker
            }
            Hold::Leased {
                worker,
                fence,
                since,
            } => {
                self.bars.push(Bar {
                    worker: worker.0.clone(),
                    task,
                    attempt: fence.attempt,
                    start: since,
                    end: now,
                    outcome,
                });
                worker
            }
        };
        if let Some(w) = self.workers.get_mut(&worker) {
            w.active = w.active.saturating_sub(1);
        }
        if let Some(j) = self.jobs.get_mut(&job) {
            j.active = j.active.saturating_sub(1);
            if let Some(n) = self.tenant_active.get_mut(&j.tenant) {
                *n = n.saturating_sub(1);
            }
        }
    }

    pub fn clear_worker(&mut self, now: Time, worker: &WorkerId) {
        let held: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, t)| matches!(&t.hold, Some(Hold::Offered { worker: w, .. } | Hold::Leased { worker: w, .. }) if w == worker))
            .map(|(id, _)| *id)
            .collect();
        for task in held {
            self.clear_task(now, task, "worker_lost");
        }
    }

    /// Records a commit; false if the task had already committed.
    pub fn commit(&mut self, task: TaskId) -> bool {
        match self.tasks.get_mut(&task) {
            Some(t) => !std::mem::replace(&mut t.committed, true),
            None => true,
        }
    }

    /// Records a task's end; false if it had already ended.
    pub fn finish(&mut self, task: TaskId) -> bool {
        let Some(t) = self.tasks.get_mut(&task) else {
            return true;
        };
        if std::mem::replace(&mut t.finished, true) {
            return false;
        }
        if let Some(j) = self.jobs.get_mut(&t.job) {
            j.finished += 1;
        }
        true
    }

    pub fn count(&mut self, kind: &'static str, what: &'static str, worker: Option<&WorkerId>) {
        *self.totals.entry((kind, what)).or_default() += 1;
        if let Some(o) = worker.and_then(|w| self.workers.get(w)).map(|w| w.ordinal) {
            *self.per_worker.entry((kind, what, o)).or_default() += 1;
        }
    }

    pub fn count_effect(&mut self, e: &Effect) {
        let worker = match e.recipient() {
            keel_engine::Recipient::Worker(w) => Some(w),
            keel_engine::Recipient::Job(_) => None,
        };
        self.count("effect", effect_name(e), worker.as_ref());
        match e {
            Effect::LeaseRevoked { reason, .. } => self.count(
                "revoke",
                crate::checks::reason_name(*reason),
                worker.as_ref(),
            ),
            Effect::TaskRequeued { reason, .. } => {
                self.count("requeue", crate::checks::reason_name(*reason), None)
            }
            Effect::GrantWithdrawn { reason, .. } => self.count(
                "withdraw",
                crate::checks::reason_name(*reason),
                worker.as_ref(),
            ),
            _ => {}
        }
    }

    /// How often `kind:what` happened, overall or to one worker.
    pub fn counted(&self, kind: &str, what: &str, worker: Option<&str>) -> u64 {
        match worker {
            None => self
                .totals
                .iter()
                .filter(|((k, w), _)| *k == kind && *w == what)
                .map(|(_, n)| n)
                .sum(),
            Some(name) => {
                let Some(o) = self.workers.get(&WorkerId::new(name)).map(|w| w.ordinal) else {
                    return 0;
                };
                self.per_worker
                    .iter()
                    .filter(|((k, w, wo), _)| *k == kind && *w == what && *wo == o)
                    .map(|(_, n)| *n)
                    .sum()
            }
        }
    }
}

pub fn effect_name(e: &Effect) -> &'static str {
    match e {
        Effect::GrantOffered { .. } => "grant_offered",
        Effect::GrantWithdrawn { .. } => "grant_withdrawn",
        Effect::LeaseRevoked { .. } => "lease_revoked",
        Effect::TaskBlocked { .. } => "task_blocked",
        Effect::TaskUnblocked { .. } => "task_unblocked",
        Effect::TaskRequeued { .. } => "task_requeued",
        Effect::TaskSuspended { .. } => "task_suspended",
        Effect::TaskResumed { .. } => "task_resumed",
        Effect::TaskFinished { .. } => "task_finished",
        Effect::JobFinished { .. } => "job_finished",
        Effect::WorkerLost { .. } => "worker_lost",
        Effect::WorkerBlacklisted { .. } => "worker_blacklisted",
        Effect::WorkerReadmitted { .. } => "worker_readmitted",
        Effect::WorkerDrained { .. } => "worker_drained",
    }
}
