//! Shrinking a failing scenario: delta debugging over the fault schedule, then removing
//! jobs, workers and tasks one at a time, then turning message faults and clock drift
//! off, keeping each change only while the same check still fails with the same seed.
//! The result is a scenario file small enough to read.

use crate::run::{run, RunOptions};
use crate::scenario::{FaultKind, Scenario};

pub struct Shrunk {
    pub scenario: Scenario,
    /// Runs spent shrinking.
    pub runs: u32,
}

struct Shrinker<'a> {
    opts: RunOptions,
    check: &'a str,
    runs: u32,
    budget: u32,
}

impl Shrinker<'_> {
    /// Does the candidate still fail the same check?
    fn fails(&mut self, s: &Scenario) -> bool {
        if self.runs >= self.budget || crate::load::check_generated(s).is_err() {
            return false;
        }
        self.runs += 1;
        let r = run(s, self.opts);
        r.violations.first().is_some_and(|v| v.check == self.check)
    }

    /// Classic ddmin over the fault list: remove chunks, then complements, halving the
    /// granularity until no single fault can go.
    fn faults(&mut self, s: &mut Scenario) {
        let mut n = 2usize;
        while s.faults.len() >= 2 {
            let len = s.faults.len();
            let chunk = len.div_ceil(n);
            let mut reduced = false;
            for start in (0..len).step_by(chunk) {
                let mut c = s.clone();
                c.faults.drain(start..(start + chunk).min(len));
                if self.fails(&c) {
                    *s = c;
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
        if s.faults.len() == 1 {
            let mut c = s.clone();
            c.faults.clear();
            if self.fails(&c) {
                *s = c;
            }
        }
    }

    fn jobs(&mut self, s: &mut Scenario) {
        let mut i = 0;
        while i < s.jobs.len() && s.jobs.len() > 1 {
            let mut c = s.clone();
            let gone = c.jobs.remove(i).name;
            c.faults
                .retain(|f| f.job.as_ref().is_none_or(|j| *j.get_ref() != gone));
            c.expect.jobs.remove(&gone);
            if self.fails(&c) {
                *s = c;
            } else {
                i += 1;
            }
        }
    }

    fn workers(&mut self, s: &mut Scenario) {
        let mut i = 0;
        while i < s.workers.len() && s.workers.len() > 1 {
            let mut c = s.clone();
            let gone = c.workers.remove(i).name;
            c.faults
                .retain(|f| f.worker.as_ref().is_none_or(|w| *w.get_ref() != gone));
            for f in &mut c.faults {
                f.workers.retain(|w| *w.get_ref() != gone);
            }
            c.faults
                .retain(|f| f.kind != FaultKind::Partition || !f.workers.is_empty());
            if self.fails(&c) {
                *s = c;
            } else {
                i += 1;
            }
        }
    }

    /// Drops tasks nothing depends on, one at a time.
    fn tasks(&mut self, s: &mut Scenario) {
        for j in 0..s.jobs.len() {
            let mut i = 0;
            while i < s.jobs[j].tasks.len() && s.jobs[j].tasks.len() > 1 {
                let key = s.jobs[j].tasks[i].key.clone();
                let needed = s.jobs[j]
                    .tasks
                    .iter()
                    .any(|t| t.after.iter().any(|a| *a.get_ref() == key));
                let mut c = s.clone();
                c.jobs[j].tasks.remove(i);
                if !needed && self.fails(&c) {
                    *s = c;
                } else {
                    i += 1;
                }
            }
        }
    }

    /// Turns each remaining kind of noise off if the failure does not need it.
    fn knobs(&mut self, s: &mut Scenario) {
        let edits: [fn(&mut Scenario); 6] = [
            |c| c.network.loss = 0.0,
            |c| c.network.duplicate = 0.0,
            |c| c.network.reorder = 0.0,
            |c| c.workers.iter_mut().for_each(|w| w.drift_ppm = 0),
            |c| c.workers.iter_mut().for_each(|w| w.fail_rate = 0.0),
            |c| c.workers.iter_mut().for_each(|w| w.slowness = 1.0),
        ];
        for edit in edits {
            let mut c = s.clone();
            edit(&mut c);
            if c != *s && self.fails(&c) {
                *s = c;
            }
        }
    }
}

/// Minimises `s`, which fails `check` under `opts`, within `budget` reruns.
pub fn shrink(s: &Scenario, opts: RunOptions, check: &str, budget: u32) -> Shrunk {
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
    let mut best = s.clone();
    best.description = format!("shrunk from {}: fails {check}", s.name);
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
