//! Reading a scenario file: TOML syntax and type errors, then references, names and
//! ranges, each reported with the file, line and column it points at. A bad file is an
//! error the author can act on, never a panic; a name that means nothing (a misspelt
//! effect, an unknown worker) is refused with the names that would be right.

mod budgets;
mod engine;
mod expect;
mod faults;
mod script;
mod workload;

use crate::scenario::Scenario;
use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use toml::Spanned;

/// Why a scenario file was refused, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    /// The file's path as given.
    pub file: String,
    /// 1-based line of the offending value.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

struct Ctx<'a> {
    file: &'a str,
    src: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Option<Range<usize>>, message: impl Into<String>) -> ScenarioError {
        let at = span.map(|s| s.start).unwrap_or(0).min(self.src.len());
        let before = &self.src[..at];
        let line = before.matches('\n').count() + 1;
        let col = at - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
        ScenarioError {
            file: self.file.to_string(),
            line,
            col,
            message: message.into(),
        }
    }

    /// Where the `n`-th occurrence of a table header starts, for errors about a whole
    /// table whose fields carry no span of their own.
    fn header(&self, header: &str, n: usize) -> Option<Range<usize>> {
        let mut from = 0;
        for _ in 0..=n {
            let i = self.src[from..].find(header)? + from;
            from = i + header.len();
        }
        Some(from - header.len()..from)
    }

    /// `name` must be one of `known`; the error lists them.
    fn known(
        &self,
        name: &Spanned<String>,
        known: &BTreeSet<&str>,
        what: &str,
        context: &str,
    ) -> Result<(), ScenarioError> {
        self.known_at(name.get_ref(), Some(name.span()), known, what, context)
    }

    /// `known` for a name without a span of its own, reported at `span`.
    fn known_at(
        &self,
        name: &str,
        span: Option<Range<usize>>,
        known: &BTreeSet<&str>,
        what: &str,
        context: &str,
    ) -> Result<(), ScenarioError> {
        if known.contains(name) {
            return Ok(());
        }
        let list: Vec<&str> = known.iter().copied().collect();
        Err(self.err(
            span,
            format!(
                "{context} names unknown {what} {name:?}; known: {}",
                list.join(", ")
            ),
        ))
    }

    /// `job` must be a declared job and `task` one of its task keys.
    fn known_task(
        &self,
        s: &Scenario,
        declared: &Declared,
        job: &Spanned<String>,
        task: &Spanned<String>,
        context: &str,
    ) -> Result<(), ScenarioError> {
        self.known(job, &declared.jobs, "job", context)?;
        self.known(task, &Declared::keys(s, job.get_ref()), "task", context)
    }
}

/// The names a scenario declares, which its faults, script and expectations refer to.
struct Declared<'a> {
    workers: BTreeSet<&'a str>,
    jobs: BTreeSet<&'a str>,
}

impl<'a> Declared<'a> {
    /// The task keys of job `name`.
    fn keys(s: &'a Scenario, name: &str) -> BTreeSet<&'a str> {
        s.jobs
            .iter()
            .filter(|j| j.name == name)
            .flat_map(|j| j.tasks.iter().map(|t| t.key.as_str()))
            .collect()
    }
}

/// Parses and checks a scenario. `file` is only used in error messages.
pub fn load(file: &str, src: &str) -> Result<Scenario, ScenarioError> {
    let ctx = Ctx { file, src };
    let scenario: Scenario = toml::from_str(src).map_err(|e| {
        // Some syntax errors come without a message; never report an empty one.
        let message = match e.message().trim() {
            "" => "invalid TOML syntax".to_string(),
            m => m.to_string(),
        };
        ctx.err(e.span(), message)
    })?;
    check(&ctx, &scenario)?;
    Ok(scenario)
}

/// Checks a scenario built in code (a swarm profile or a shrink candidate).
pub(crate) fn check_generated(s: &Scenario) -> Result<(), ScenarioError> {
    check(
        &Ctx {
            file: "<generated>",
            src: "",
        },
        s,
    )
}

fn check(ctx: &Ctx, s: &Scenario) -> Result<(), ScenarioError> {
    workload::network(ctx, s)?;
    let declared = Declared {
        workers: workload::workers(ctx, s)?,
        jobs: workload::jobs(ctx, s)?,
    };
    workload::schedules(ctx, s)?;
    for (i, f) in s.faults.iter().enumerate() {
        faults::check(ctx, s, &declared, f, i)?;
    }
    for (i, step) in s.script.iter().enumerate() {
        script::check(ctx, s, &declared, step, i)?;
    }
    engine::check(ctx, s)?;
    budgets::check(ctx, s)?;
    expect::check(ctx, s, &declared)
}

#[cfg(test)]
mod tests;
