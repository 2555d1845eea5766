//! Counters for a scenario's `[[expect.count]]` bounds. Each expectation is one counter
//! with its filters (worker, job, task, attempt, time window); every counted event is
//! matched against them as it is released, so nothing is stored per event and a run
//! without count expectations (a swarm seed) counts nothing at all.

use crate::scenario::CountExpect;
use keel_engine::{Time, WorkerId};

/// Whom a counted event concerns, by name, as far as it is known.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Subject<'a> {
    pub worker: Option<&'a WorkerId>,
    pub job: Option<&'a str>,
    /// The task's key within its job.
    pub task: Option<&'a str>,
    pub attempt: Option<u32>,
}

struct Counter {
    expect: CountExpect,
    worker: Option<WorkerId>,
    kind: String,
    name: String,
    count: u64,
}

impl Counter {
    fn matches(&self, at: Time, kind: &str, name: &str, s: &Subject) -> bool {
        let e = &self.expect;
        let same = |want: &Option<toml::Spanned<String>>, got: Option<&str>| {
            want.as_ref()
                .is_none_or(|w| got.is_some_and(|g| g == w.get_ref()))
        };
        self.kind == kind
            && self.name == name
            && self.worker.as_ref().is_none_or(|w| s.worker == Some(w))
            && same(&e.job, s.job)
            && same(&e.task, s.task)
            && e.attempt.is_none_or(|a| s.attempt == Some(a))
            && e.from_ms.is_none_or(|from| at >= from)
            && e.until_ms.is_none_or(|until| at < until)
    }

    /// The expectation's filters, as words: ` for w1 on j/a attempt 2 within 0..5000 ms`.
    fn scope(&self) -> String {
        let e = &self.expect;
        let mut out = String::new();
        if let Some(w) = &e.worker {
            out.push_str(&format!(" for {}", w.get_ref()));
        }
        match (&e.job, &e.task) {
            (Some(j), Some(t)) => out.push_str(&format!(" on {}/{}", j.get_ref(), t.get_ref())),
            (Some(j), None) => out.push_str(&format!(" in {}", j.get_ref())),
            _ => {}
        }
        if let Some(a) = e.attempt {
            out.push_str(&format!(" attempt {a}"));
        }
        if e.from_ms.is_some() || e.until_ms.is_some() {
            let from = e.from_ms.unwrap_or(0);
            let until = e.until_ms.map(|u| u.to_string()).unwrap_or_default();
            out.push_str(&format!(" within {from}..{until} ms"));
        }
        out
    }
}

#[derive(Default)]
pub(crate) struct Stats {
    counters: Vec<Counter>,
}

impl Stats {
    pub(crate) fn new(expect: &[CountExpect]) -> Stats {
        let counters = expect
            .iter()
            .map(|e| {
                let what = e.what.get_ref();
                let (kind, name) = what.split_once(':').unwrap_or((what, ""));
                Counter {
                    expect: e.clone(),
                    worker: e
                        .worker
                        .as_ref()
                        .map(|w| WorkerId::new(w.get_ref().as_str())),
                    kind: kind.to_string(),
                    name: name.to_string(),
                    count: 0,
                }
            })
            .collect();
        Stats { counters }
    }

    /// Whether any expectation counts `kind:name`; callers skip naming the subject
    /// otherwise.
    pub(crate) fn wants(&self, kind: &str, name: &str) -> bool {
        self.counters
            .iter()
            .any(|c| c.kind == kind && c.name == name)
    }

    pub(crate) fn count(&mut self, at: Time, kind: &str, name: &str, subject: &Subject) {
        for c in &mut self.counters {
            if c.matches(at, kind, name, subject) {
                c.count += 1;
            }
        }
    }

    /// Every count outside its bounds, as a sentence.
    pub(crate) fn unmet(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.counters {
            let (e, n) = (&c.expect, c.count);
            let what = e.what.get_ref();
            if let Some(min) = e.min.filter(|m| n < *m) {
                out.push(format!(
                    "{what}{}: expected at least {min}, got {n}",
                    c.scope()
                ));
            }
            if let Some(max) = e.max.filter(|m| n > *m) {
                out.push(format!(
                    "{what}{}: expected at most {max}, got {n}",
                    c.scope()
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml::Spanned;

    fn expect(what: &str) -> CountExpect {
        CountExpect {
            what: Spanned::new(0..0, what.into()),
            worker: None,
            job: None,
            task: None,
            attempt: None,
            from_ms: None,
            until_ms: None,
            min: Some(1),
            max: Some(1),
        }
    }

    /// A missed count names its filters, so a person can tell which count it was.
    #[test]
    fn a_missed_count_names_its_filters() {
        let named = |s: &str| Some(Spanned::new(0..0, s.to_string()));
        let all = CountExpect {
            worker: named("w1"),
            job: named("j"),
            task: named("a"),
            attempt: Some(2),
            from_ms: Some(100),
            until_ms: Some(200),
            ..expect("effect:task_requeued")
        };
        let job_only = CountExpect {
            job: named("j"),
            from_ms: Some(5),
            ..expect("effect:task_requeued")
        };
        let until_only = CountExpect {
            until_ms: Some(9),
            ..expect("effect:task_requeued")
        };
        let stats = Stats::new(&[all, job_only, until_only, expect("effect:task_requeued")]);
        let what = "effect:task_requeued";
        assert_eq!(
            stats.unmet(),
            [
                format!(
                    "{what} for w1 on j/a attempt 2 within 100..200 ms: expected at least 1, got 0"
                ),
                format!("{what} in j within 5.. ms: expected at least 1, got 0"),
                format!("{what} within 0..9 ms: expected at least 1, got 0"),
                format!("{what}: expected at least 1, got 0"),
            ]
        );
        assert!(stats.wants("effect", "task_requeued"));
        assert!(!stats.wants("effect", "task_finished"));
        assert!(!stats.wants("revoke", "task_requeued"));
    }

    #[test]
    fn filters_narrow_what_is_counted() {
        let named = |s: &str| Some(Spanned::new(0..0, s.to_string()));
        let scoped = CountExpect {
            job: named("j"),
            task: named("a"),
            attempt: Some(2),
            from_ms: Some(100),
            until_ms: Some(200),
            ..expect("reject:stale_fence")
        };
        let mut stats = Stats::new(&[scoped, expect("reject:stale_fence")]);
        let w1 = WorkerId::new("w1");
        let on = |task, attempt| Subject {
            worker: Some(&w1),
            job: Some("j"),
            task: Some(task),
            attempt: Some(attempt),
        };
        stats.count(150, "reject", "stale_fence", &on("a", 2));
        stats.count(150, "reject", "stale_fence", &on("b", 2));
        stats.count(150, "reject", "stale_fence", &on("a", 1));
        stats.count(200, "reject", "stale_fence", &on("a", 2));
        stats.count(150, "reject", "unknown_grant", &on("a", 2));
        let unmet = stats.unmet();
        assert_eq!(
            unmet,
            ["reject:stale_fence: expected at most 1, got 4"],
            "the scoped counter saw exactly one"
        );
        assert!(stats.wants("reject", "stale_fence"));
        assert!(!stats.wants("effect", "worker_lost"));
    }
}
