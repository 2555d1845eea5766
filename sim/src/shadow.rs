//! The checker's shadow of the coordinator: who holds which task (an offered grant or a
//! lease), how many tasks each worker, job and tenant holds, which tasks committed and
//! finished. It is rebuilt only from released replies and effects, so it is what an
//! outside observer could know, and the routing rules are checked against it.

use crate::check::Check;
use keel_engine::{Fence, GrantId, JobId, JobSpec, TaskId, Time, WorkerId};
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
    /// Position in its job's spec.
    index: usize,
    caps: Vec<String>,
    hold: Option<Hold>,
    committed: bool,
    finished: bool,
}

struct JobInfo {
    name: String,
    tenant: String,
    cap: Option<u32>,
    first: TaskId,
    keys: Vec<String>,
    active: u32,
    finished: u32,
}

#[derive(Default)]
struct WorkerInfo {
    caps: BTreeSet<String>,
    max: u32,
    active: u32,
    blacklisted: bool,
}

/// A lease that ended: the attempt it carried, for the timeline.
pub(crate) struct EndedLease {
    pub worker: WorkerId,
    pub fence: Fence,
    pub since: Time,
}

/// Routing rules a grant broke, each with its detail.
pub(crate) type Flags = Vec<(Check, String)>;

#[derive(Default)]
pub(crate) struct Shadow {
    tasks: BTreeMap<TaskId, TaskInfo>,
    jobs: BTreeMap<JobId, JobInfo>,
    job_ids: BTreeMap<String, JobId>,
    workers: BTreeMap<WorkerId, WorkerInfo>,
    /// Offered grants: the task and attempt each offers.
    grants: BTreeMap<GrantId, (TaskId, u32)>,
    /// The tasks each worker holds, so a lost worker's are found without a scan.
    held: BTreeMap<WorkerId, BTreeSet<TaskId>>,
    tenant_active: BTreeMap<String, u32>,
    tenant_caps: BTreeMap<String, u32>,
}

impl Shadow {
    pub(crate) fn new(tenant_caps: BTreeMap<String, u32>) -> Shadow {
        Shadow {
            tenant_caps,
            ..Shadow::default()
        }
    }

    pub(crate) fn add_job(&mut self, job: JobId, first: TaskId, spec: &JobSpec) {
        for (i, t) in spec.tasks.iter().enumerate() {
            let info = TaskInfo {
                job,
                index: i,
                caps: t.capabilities.clone(),
                hold: None,
                committed: false,
                finished: false,
            };
            self.tasks.insert(TaskId::nth_after(first, i as u64), info);
        }
        self.job_ids.insert(spec.name.clone(), job);
        let info = JobInfo {
            name: spec.name.clone(),
            tenant: spec.tenant.clone(),
            cap: spec.max_concurrency,
            first,
            keys: spec.tasks.iter().map(|t| t.key.clone()).collect(),
            active: 0,
            finished: 0,
        };
        self.jobs.insert(job, info);
    }

    pub(crate) fn job_name(&self, job: JobId) -> Option<&str> {
        self.jobs.get(&job).map(|j| j.name.as_str())
    }

    /// The job and key of a task, by name.
    pub(crate) fn task_names(&self, task: TaskId) -> Option<(&str, &str)> {
        let t = self.tasks.get(&task)?;
        let j = self.jobs.get(&t.job)?;
        Some((j.name.as_str(), j.keys.get(t.index)?.as_str()))
    }

    /// The task `key` of the job named `job`, once the job's admission is known.
    pub(crate) fn task_by_key(&self, job: &str, key: &str) -> Option<TaskId> {
        let j = self.jobs.get(self.job_ids.get(job)?)?;
        let i = j.keys.iter().position(|k| k == key)?;
        Some(TaskId::nth_after(j.first, i as u64))
    }

    /// The task and attempt an offered grant is for, while it is offered.
    pub(crate) fn grant_task(&self, grant: GrantId) -> Option<(TaskId, u32)> {
        self.grants.get(&grant).copied()
    }

    /// Jobs whose admission was acknowledged, with their names.
    pub(crate) fn jobs(&self) -> impl Iterator<Item = (JobId, &str)> {
        self.jobs.iter().map(|(id, j)| (*id, j.name.as_str()))
    }

    pub(crate) fn job_progress(&self, name: &str) -> String {
        match self.job_ids.get(name).and_then(|id| self.jobs.get(id)) {
            Some(j) => format!(
                "{}/{} tasks finished, {} held",
                j.finished,
                j.keys.len(),
                j.active
            ),
            None => "never admitted".into(),
        }
    }

    pub(crate) fn register(&mut self, worker: &WorkerId, caps: &[String], max: u32) {
        let w = self.workers.entry(worker.clone()).or_default();
        w.caps = caps.iter().cloned().collect();
        w.max = max;
        // A new instance keeps the worker's blacklist: only WorkerReadmitted ends it.
    }

    pub(crate) fn blacklist(&mut self, worker: &WorkerId, on: bool) {
        if let Some(w) = self.workers.get_mut(worker) {
            w.blacklisted = on;
        }
    }

    /// A grant was offered: checks the routing rules, then records the hold.
    pub(crate) fn offer(
        &mut self,
        worker: &WorkerId,
        grant: GrantId,
        job: JobId,
        task: TaskId,
        attempt: u32,
    ) -> Flags {
        let mut flags = Flags::new();
        let Some(t) = self.tasks.get(&task) else {
            let detail = format!("grant {grant} offers unknown task {task}");
            return vec![(Check::UnknownTask, detail)];
        };
        if let Some(h) = &t.hold {
            let detail = format!("{task} offered to {worker} by {grant} while held: {h:?}");
            flags.push((Check::DoubleGrant, detail));
        }
        self.worker_rules(worker, grant, task, &t.caps, &mut flags);
        self.job_rules(job, task, &mut flags);
        if flags.is_empty() {
            let hold = Hold::Offered {
                worker: worker.clone(),
                grant,
            };
            self.hold(task, hold);
            self.grants.insert(grant, (task, attempt));
        }
        flags
    }

    /// The worker may take the grant: registered, not blacklisted, capable, not full.
    fn worker_rules(
        &self,
        worker: &WorkerId,
        grant: GrantId,
        task: TaskId,
        caps: &[String],
        flags: &mut Flags,
    ) {
        let Some(w) = self.workers.get(worker) else {
            let detail = format!("{grant} offered to unregistered {worker}");
            return flags.push((Check::UnknownWorker, detail));
        };
        if w.blacklisted {
            let detail = format!("{grant} for {task} offered to blacklisted {worker}");
            flags.push((Check::BlacklistedGrant, detail));
        }
        if let Some(c) = caps.iter().find(|c| !w.caps.contains(*c)) {
            let detail = format!("{task} needs {c:?} but was offered to {worker}");
            flags.push((Check::Capability, detail));
        }
        if w.active >= w.max {
            let detail = format!(
                "{worker} already holds {} of {} when offered {task}",
                w.active, w.max
            );
            flags.push((Check::WorkerCap, detail));
        }
    }

    /// The job and its tenant may run one more task.
    fn job_rules(&self, job: JobId, task: TaskId, flags: &mut Flags) {
        let Some(j) = self.jobs.get(&job) else {
            return;
        };
        if j.cap.is_some_and(|c| j.active >= c) {
            let detail = format!(
                "job {} holds {} tasks, cap {:?}, when offered {task}",
                j.name, j.active, j.cap
            );
            flags.push((Check::JobCap, detail));
        }
        let held = self.tenant_active.get(&j.tenant).copied().unwrap_or(0);
        if let Some(cap) = self.tenant_caps.get(&j.tenant).filter(|c| held >= **c) {
            let detail = format!(
                "tenant {} holds {held} tasks, cap {cap}, when offered {task}",
                j.tenant
            );
            flags.push((Check::TenantCap, detail));
        }
    }

    fn hold(&mut self, task: TaskId, hold: Hold) {
        let Some(t) = self.tasks.get_mut(&task) else {
            return;
        };
        let worker = match &hold {
            Hold::Offered { worker, .. } | Hold::Leased { worker, .. } => worker,
        };
        // A held task is only ever held again by the same worker (its lease).
        self.held.entry(worker.clone()).or_default().insert(task);
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
    pub(crate) fn lease(
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
        let hold = Hold::Leased {
            worker: worker.clone(),
            fence,
            since: now,
        };
        self.hold(fence.task, hold);
        Ok(())
    }

    pub(crate) fn release_grant(&mut self, grant: GrantId) {
        let Some((task, _)) = self.grants.remove(&grant) else {
            return;
        };
        let offered = matches!(self.tasks.get(&task).and_then(|t| t.hold.as_ref()), Some(Hold::Offered { grant: g, .. }) if *g == grant);
        if offered {
            self.clear_task(task);
        }
    }

    pub(crate) fn holds_lease(&self, fence: Fence) -> bool {
        matches!(self.tasks.get(&fence.task).and_then(|t| t.hold.as_ref()), Some(Hold::Leased { fence: f, .. }) if *f == fence)
    }

    pub(crate) fn describe_hold(&self, task: TaskId) -> String {
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

    /// Ends the lease `fence` if it is the live one.
    pub(crate) fn end_lease(&mut self, fence: Fence) -> Option<EndedLease> {
        if self.holds_lease(fence) {
            self.clear_task(fence.task)
        } else {
            None
        }
    }

    /// The task is held by nobody now; returns the lease it had, if it was leased.
    pub(crate) fn clear_task(&mut self, task: TaskId) -> Option<EndedLease> {
        let t = self.tasks.get_mut(&task)?;
        let hold = t.hold.take()?;
        let job = t.job;
        let (worker, ended) = match hold {
            Hold::Offered { worker, grant } => {
                self.grants.remove(&grant);
                (worker, None)
            }
            Hold::Leased {
                worker,
                fence,
                since,
            } => {
                let ended = EndedLease {
                    worker: worker.clone(),
                    fence,
                    since,
                };
                (worker, Some(ended))
            }
        };
        if let Some(held) = self.held.get_mut(&worker) {
            held.remove(&task);
        }
        if let Some(w) = self.workers.get_mut(&worker) {
            w.active = w.active.saturating_sub(1);
        }
        if let Some(j) = self.jobs.get_mut(&job) {
            j.active = j.active.saturating_sub(1);
            if let Some(n) = self.tenant_active.get_mut(&j.tenant) {
                *n = n.saturating_sub(1);
            }
        }
        ended
    }

    /// The worker was declared lost: everything it held is released.
    pub(crate) fn clear_worker(&mut self, worker: &WorkerId) -> Vec<EndedLease> {
        let held = self.held.remove(worker).unwrap_or_default();
        held.into_iter()
            .filter_map(|task| self.clear_task(task))
            .collect()
    }

    /// Records a commit; false if the task had already committed.
    pub(crate) fn commit(&mut self, task: TaskId) -> bool {
        match self.tasks.get_mut(&task) {
            Some(t) => !std::mem::replace(&mut t.committed, true),
            None => true,
        }
    }

    /// Records a task's end; false if it had already ended.
    pub(crate) fn finish(&mut self, task: TaskId) -> bool {
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
}

#[cfg(test)]
#[path = "shadow_tests.rs"]
mod tests;
