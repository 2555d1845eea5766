//! The budget check following the released history: reports, grants, limit effects
//! and ends, one record at a time; and the comparison with the engine's own views.

use super::{accepted_report, budget_cancelled, compared, counted, limit_of, BudgetChecks, Key};
use keel_engine::{
    Accepted, BudgetOwner, BudgetView, Effect, Input, JobId, JobOutcome, LimitKind, Rejection,
    TaskId, Time, WorkerCommand, ATTEMPTS,
};
use std::collections::BTreeSet;

impl BudgetChecks {
    /// One released record at engine time `at`: what it breaks, in words.
    pub(crate) fn released(
        &mut self,
        at: Time,
        input: &Input,
        reply: Option<&Result<Accepted, Rejection>>,
        effects: &[Effect],
    ) -> Vec<String> {
        if !self.active() {
            return Vec::new();
        }
        let mut broken = Vec::new();
        let mut touched = BTreeSet::new();
        if let Some((command, accepted)) = accepted_report(input, reply) {
            broken.extend(self.report(at, command, accepted, &mut touched));
        }
        for e in effects {
            broken.extend(self.effect(at, e, &mut touched));
        }
        for e in std::mem::take(&mut self.pending) {
            broken.extend(self.limit(at, &e));
        }
        for key in touched {
            broken.extend(self.crossings(at, &key));
        }
        broken
    }

    /// An accepted usage report: counted once per key, and the engine's `used` agrees.
    fn report(
        &mut self,
        at: Time,
        command: &WorkerCommand,
        accepted: &Accepted,
        touched: &mut BTreeSet<Key>,
    ) -> Option<String> {
        let (
            WorkerCommand::ReportUsage {
                fence,
                budget,
                dimension,
                amount,
                dedup_key,
            },
            Accepted::UsageRecorded {
                owner,
                used,
                duplicate,
                ..
            },
        ) = (command, accepted)
        else {
            return None;
        };
        let job = self.tasks.get(&fence.task).copied();
        let expected = job.and_then(|j| self.keys_of(j).into_iter().find(|(_, n)| n == budget));
        let key = (owner.clone(), budget.clone());
        if expected.as_ref() != Some(&key) {
            return Some(format!(
                "report {dedup_key} of {fence} counted against {owner} budget {budget}, \
                 which resolves to {expected:?}"
            ));
        }
        touched.insert(key.clone());
        let count = self.count_at(&key, at);
        let seen = count.keys.get(dedup_key).copied();
        let problem = match (seen, duplicate) {
            (Some(first), false) => Some(format!(
                "counted a second time as new (first counted {first})"
            )),
            (None, true) => Some("answered as a duplicate but never counted".to_string()),
            (None, false) => {
                count.keys.insert(dedup_key.clone(), *amount);
                let d = count.used.entry(dimension.clone()).or_default();
                *d = d.saturating_add(*amount);
                None
            }
            (Some(_), true) => None,
        };
        let counted = count.used.get(dimension).copied().unwrap_or(0);
        let problem = problem.or_else(|| {
            (counted != *used).then(|| format!("engine says {used} used, counted {counted}"))
        });
        problem.map(|p| format!("{owner} budget {budget} {dimension}: report {dedup_key}: {p}"))
    }

    fn effect(&mut self, at: Time, e: &Effect, touched: &mut BTreeSet<Key>) -> Vec<String> {
        match e {
            Effect::GrantOffered { job, task, .. } => self.granted(at, *job, *task, touched),
            Effect::BudgetLimitReached { dimension, .. } if dimension == ATTEMPTS => {
                self.pending.push(e.clone());
                Vec::new()
            }
            Effect::BudgetLimitReached { .. } => self.limit(at, e).into_iter().collect(),
            Effect::TaskFinished { job, task, outcome } if budget_cancelled(outcome) => {
                self.cancelled(*job, *task).into_iter().collect()
            }
            Effect::JobFinished { job, outcome } => {
                self.ended(*job, *outcome).into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// A grant: none once a budget of the job (or of its tenant, this period) reached a
    /// hard limit; then one attempt against each budget limiting attempts.
    fn granted(
        &mut self,
        at: Time,
        job: JobId,
        task: TaskId,
        touched: &mut BTreeSet<Key>,
    ) -> Vec<String> {
        let mut broken = Vec::new();
        if let Some(why) = self.stopped(job) {
            broken.push(format!("{task} of {job} granted after its {why}"));
        }
        for key in self.keys_of(job) {
            if let (BudgetOwner::Tenant(t), Some((d, used, hard))) =
                (&key.0, self.exhausted(&key, at))
            {
                broken.push(format!(
                    "{task} of {job} granted at {at} ms while tenant {t} budget {} {d} \
                     was {used} >= hard {hard} this period",
                    key.1
                ));
            }
            if self
                .spec(&key)
                .is_some_and(|s| s.limits.contains_key(ATTEMPTS))
            {
                let count = self.count_at(&key, at);
                let n = count.used.entry(ATTEMPTS.to_string()).or_default();
                *n = n.saturating_add(1);
                touched.insert(key);
            }
        }
        for e in std::mem::take(&mut self.pending) {
            broken.extend(self.limit(at, &e));
        }
        broken
    }

    /// A limit effect: declared by the budget, raised once, at the counted use.
    fn limit(&mut self, at: Time, e: &Effect) -> Option<String> {
        let (key, dimension, kind, used, limit) = limit_of(e)?;
        let text = format!(
            "{} budget {} {dimension} {kind:?} limit {limit}",
            key.0, key.1
        );
        let declared = self
            .spec(&key)
            .and_then(|s| s.limits.get(dimension))
            .and_then(|l| match kind {
                LimitKind::Soft => l.soft,
                LimitKind::Hard => l.hard,
            });
        if declared != Some(limit) || used < limit {
            return Some(format!(
                "{text} raised at {used}, but it declares {declared:?}"
            ));
        }
        let count = self.count_at(&key, at);
        let counted_use = count.used.get(dimension).copied();
        let again = match kind {
            LimitKind::Soft => !count.warned.insert(dimension.to_string()),
            LimitKind::Hard => count.hard.replace((dimension.to_string(), at)).is_some(),
        };
        if again {
            return Some(format!("{text} raised twice in one period"));
        }
        match counted_use {
            Some(c) if counted(dimension) && c != used => {
                Some(format!("{text} raised at {used}, but counted {c}"))
            }
            None if counted(dimension) => Some(format!("{text} raised, but nothing counted")),
            _ => None,
        }
    }

    /// After a record: every limit the count reached in `key` was raised.
    fn crossings(&self, at: Time, key: &Key) -> Vec<String> {
        let (Some(spec), Some(count)) = (self.spec(key), self.current(key, at)) else {
            return Vec::new();
        };
        let mut broken = Vec::new();
        for (d, l) in &spec.limits {
            let used = count.used.get(d).copied().unwrap_or(0);
            if l.soft.is_some_and(|s| used >= s) && !count.warned.contains(d) {
                broken.push(format!(
                    "{} budget {} {d} reached soft {:?} at {used} and nothing was raised",
                    key.0, key.1, l.soft
                ));
            }
            if l.hard.is_some_and(|h| used >= h) && count.hard.is_none() {
                broken.push(format!(
                    "{} budget {} {d} reached hard {:?} at {used} and nothing was raised",
                    key.0, key.1, l.hard
                ));
            }
        }
        broken
    }

    /// A task cancelled for a budget: only in a job its own budget stopped.
    fn cancelled(&mut self, job: JobId, task: TaskId) -> Option<String> {
        let stopped = self.stopped(job).is_some();
        if let Some(t) = self.jobs.get_mut(&job) {
            t.budget_cancelled = true;
        }
        (!stopped)
            .then(|| format!("{task} of {job} cancelled for a budget none of its own reached"))
    }

    /// A job ended: one whose tasks were cancelled for its budget ends failed.
    fn ended(&mut self, job: JobId, outcome: JobOutcome) -> Option<String> {
        let t = self.jobs.get_mut(&job)?;
        t.ended = true;
        (t.budget_cancelled && outcome != JobOutcome::Failed).then(|| {
            format!(
                "{job} had tasks cancelled for its budget but ended {}",
                outcome.label()
            )
        })
    }

    /// The engine holds exactly the released inputs, at engine time `now`: its use of
    /// every counted dimension is the count.
    pub(crate) fn compare(&self, now: Time, views: &[BudgetView]) -> Option<String> {
        compared(views).find_map(|(key, d, used)| {
            let counted = self.current(&key, now).and_then(|c| c.used.get(d).copied());
            (counted.unwrap_or(0) != used).then(|| {
                format!(
                    "{} budget {} {d}: the engine holds {used} used at {now} ms, counted {}",
                    key.0,
                    key.1,
                    counted.unwrap_or(0)
                )
            })
        })
    }

    /// Jobs their own budget stopped that have not ended, with why.
    pub(crate) fn stopped_unended(&self) -> Vec<String> {
        self.jobs
            .iter()
            .filter(|(_, t)| !t.ended)
            .filter_map(|(id, _)| Some(format!("{id} stopped by its {}", self.stopped(*id)?)))
            .collect()
    }
}
