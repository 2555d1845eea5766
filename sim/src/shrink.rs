//! Shrinking a failing scenario: delta debugging over the fault schedule, then removing
//! jobs, workers and tasks one at a time, then turning message faults and clock drift
//! off, keeping each change only while the same check still fails with the same seed.
//! The result is a scenario file small enough to read.

use crate::check::Check;
use crate::run::{run, RunOptions};
use crate::scenario::{FaultKind, Scenario};

/// The smallest scenario found that still fails the same check.
pub struct Shrunk {
    /// That scenario.
    pub scenario: Scenario,
    /// Runs spent shrinking.
    pub runs: u32,
}

struct Shrinker {
    opts: RunOptions,
    check: Check,
    runs: u32,
    budget: u32,
}

impl Shrinker {
    /// Does the candidate still fail the same check?
    fn fails(&mut self, candidate: &Scenario) -> bool {
        if self.runs >= self.budget || crate::load::check_generated(candidate).is_err() {
            return false;
        }
        self.runs += 1;
        let report = run(candidate, self.opts);
        report
            .violations
            .first()
            .is_some_and(|failure| failure.check == self.check)
    }

    /// Classic ddmin over the fault list: remove chunks, then complements, halving the
    /// granularity until no single fault can go.
    fn faults(&mut self, scenario: &mut Scenario) {
        let mut n = 2usize;
        while scenario.faults.len() >= 2 {
            let len = scenario.faults.len();
            let chunk = len.div_ceil(n);
            let mut reduced = false;
            for start in (0..len).step_by(chunk) {
                let mut candidate = scenario.clone();
                candidate.faults.drain(start..(start + chunk).min(len));
                if self.fails(&candidate) {
                    *scenario = candidate;
                    n = (n - 1).max(2);
                    reduced = true;
                    break;
                }
            }
            if !reduced {
                if chunk == 1 {
                    break;
                }
                n = (n * 2).min(len);
            }
        }
        if scenario.faults.len() == 1 {
            let mut candidate = scenario.clone();
            candidate.faults.clear();
            if self.fails(&candidate) {
                *scenario = candidate;
            }
        }
    }

    fn jobs(&mut self, scenario: &mut Scenario) {
        let mut i = 0;
        while i < scenario.jobs.len() && scenario.jobs.len() > 1 {
            let mut candidate = scenario.clone();
            let gone = candidate.jobs.remove(i).name;
            candidate
                .faults
                .retain(|f| f.job.as_ref().is_none_or(|j| *j.get_ref() != gone));
            candidate.expect.jobs.remove(&gone);
            let names = |n: &Option<toml::Spanned<String>>| {
                n.as_ref().is_some_and(|n| *n.get_ref() == gone)
            };
            candidate.script.retain(|step| !names(&step.job));
            candidate.expect.counts.retain(|count| !names(&count.job));
            if self.fails(&candidate) {
                *scenario = candidate;
            } else {
                i += 1;
            }
        }
    }

    fn workers(&mut self, scenario: &mut Scenario) {
        let mut i = 0;
        while i < scenario.workers.len() && scenario.workers.len() > 1 {
            let mut candidate = scenario.clone();
            let gone = candidate.workers.remove(i).name;
            candidate
                .faults
                .retain(|f| f.worker.as_ref().is_none_or(|w| *w.get_ref() != gone));
            for f in &mut candidate.faults {
                f.workers.retain(|w| *w.get_ref() != gone);
            }
            candidate
                .faults
                .retain(|f| f.kind != FaultKind::Partition || !f.workers.is_empty());
            candidate
                .script
                .retain(|step| *step.worker.get_ref() != gone);
            candidate
                .expect
                .counts
                .retain(|count| count.worker.as_ref().is_none_or(|w| *w.get_ref() != gone));
            if self.fails(&candidate) {
                *scenario = candidate;
            } else {
                i += 1;
            }
        }
    }

    /// Drops tasks nothing depends on, one at a time.
    fn tasks(&mut self, scenario: &mut Scenario) {
        for j in 0..scenario.jobs.len() {
            let mut i = 0;
            while i < scenario.jobs[j].tasks.len() && scenario.jobs[j].tasks.len() > 1 {
                let key = scenario.jobs[j].tasks[i].key.clone();
                let needed = scenario.jobs[j]
                    .tasks
                    .iter()
                    .any(|t| t.after.iter().any(|a| *a.get_ref() == key));
                let mut candidate = scenario.clone();
                candidate.jobs[j].tasks.remove(i);
                candidate.jobs[j].result.retain(|k| *k != key);
                if !needed && self.fails(&candidate) {
                    *scenario = candidate;
                } else {
                    i += 1;
                }
            }
        }
    }

    /// Turns each remaining kind of noise off if the failure does not need it.
    fn knobs(&mut self, scenario: &mut Scenario) {
        let edits: [fn(&mut Scenario); 6] = [
            |candidate| candidate.network.loss = 0.0,
            |candidate| candidate.network.duplicate = 0.0,
            |candidate| candidate.network.reorder = 0.0,
            |candidate| candidate.workers.iter_mut().for_each(|w| w.drift_ppm = 0),
            |candidate| candidate.workers.iter_mut().for_each(|w| w.fail_rate = 0.0),
            |candidate| candidate.workers.iter_mut().for_each(|w| w.slowness = 1.0),
        ];
        for edit in edits {
            let mut candidate = scenario.clone();
            edit(&mut candidate);
            if candidate != *scenario && self.fails(&candidate) {
                *scenario = candidate;
            }
        }
    }
}

/// Minimises `scenario`, which fails `check` under `opts`, within `budget` reruns.
pub fn shrink(scenario: &Scenario, opts: RunOptions, check: Check, budget: u32) -> Shrunk {
    let opts = RunOptions {
        record: false,
        ..opts
    };
    let mut sh = Shrinker {
        opts,
        check,
        runs: 0,
        budget,
    };
    let mut best = scenario.clone();
    best.description = format!("shrunk from {}: fails {check}", scenario.name);
    loop {
        let before = (
            best.faults.len(),
            best.jobs.len(),
            best.workers.len(),
            best.jobs.iter().map(|j| j.tasks.len()).sum::<usize>(),
        );
        sh.faults(&mut best);
        sh.jobs(&mut best);
        sh.workers(&mut best);
        sh.tasks(&mut best);
        let after = (
            best.faults.len(),
            best.jobs.len(),
            best.workers.len(),
            best.jobs.iter().map(|j| j.tasks.len()).sum::<usize>(),
        );
        if after == before || sh.runs >= budget {
            break;
        }
    }
    sh.knobs(&mut best);
    Shrunk {
        scenario: best,
        runs: sh.runs,
    }
}
