//! Reading a scenario file: TOML syntax and type errors, then references and ranges,
//! each reported with the file, line and column it points at. A bad file is an error
//! the author can act on, never a panic.

use crate::scenario::{Fault, FaultKind, GroupSpec, Scenario};
use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use toml::Spanned;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub col: usize,
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
pub fn check_generated(s: &Scenario) -> Result<(), ScenarioError> {
    check(
        &Ctx {
            file: "<generated>",
            src: "",
        },
        s,
    )
}

fn check(ctx: &Ctx, s: &Scenario) -> Result<(), ScenarioError> {
    let net = &s.network;
    for (name, p) in [
        ("loss", net.loss),
        ("duplicate", net.duplicate),
        ("reorder", net.reorder),
    ] {
        if !(0.0..=1.0).contains(&p) {
            return Err(ctx.err(
                ctx.header("[network]", 0),
                format!("network.{name} must be within 0..=1, got {p}"),
            ));
        }
    }
    if net.latency_min_ms > net.latency_max_ms {
        return Err(ctx.err(
            ctx.header("[network]", 0),
            "network.latency_min_ms exceeds latency_max_ms",
        ));
    }
    if net.sync_interval_ms == 0 {
        return Err(ctx.err(
            ctx.header("[network]", 0),
            "network.sync_interval_ms must be at least 1",
        ));
    }
    if s.workers.is_empty() {
        return Err(ctx.err(None, "a scenario needs at least one [[worker]]"));
    }
    let mut workers = BTreeSet::new();
    for (i, w) in s.workers.iter().enumerate() {
        let at = ctx.header("[[worker]]", i);
        if !workers.insert(w.name.as_str()) {
            return Err(ctx.err(at, format!("worker {:?} is declared twice", w.name)));
        }
        if !((0.0..=1.0).contains(&w.fail_rate) && w.slowness > 0.0 && w.slowness <= 1000.0) {
            return Err(ctx.err(
                at,
                format!(
                    "worker {:?}: fail_rate must be within 0..=1 and slowness within (0, 1000]",
                    w.name
                ),
            ));
        }
        if w.max_concurrency == 0 {
            return Err(ctx.err(
                at,
                format!("worker {:?}: max_concurrency must be at least 1", w.name),
            ));
        }
    }
    let mut jobs = BTreeSet::new();
    for (i, j) in s.jobs.iter().enumerate() {
        let at = ctx.header("[[job]]", i);
        if !jobs.insert(j.name.as_str()) {
            return Err(ctx.err(at, format!("job {:?} is declared twice", j.name)));
        }
        if j.tasks.is_empty() {
            return Err(ctx.err(at, format!("job {:?} has no [[job.task]]", j.name)));
        }
        let keys: BTreeSet<&str> = j.tasks.iter().map(|t| t.key.as_str()).collect();
        for t in &j.tasks {
            for up in &t.after {
                if !keys.contains(up.get_ref().as_str()) {
                    return Err(ctx.err(
                        Some(up.span()),
                        format!(
                            "task {:?} depends on unknown task {:?} in job {:?}",
                            t.key,
                            up.get_ref(),
                            j.name
                        ),
                    ));
                }
            }
            if t.group == GroupSpec::Quorum && t.quorum.is_none() {
                return Err(ctx.err(
                    at.clone(),
                    format!("task {:?}: group = \"quorum\" needs quorum = k", t.key),
                ));
            }
        }
    }
    for (i, f) in s.faults.iter().enumerate() {
        check_fault(ctx, s, &workers, &jobs, f, i)?;
    }
    check_engine(ctx, s)?;
    for name in s.expect.jobs.keys() {
        if !jobs.contains(name.as_str()) {
            return Err(ctx.err(
                ctx.header("[expect", 0),
                format!("expect.jobs names unknown job {name:?}"),
            ));
        }
    }
    Ok(())
}

/// The engine's own configuration floors (a zero liveness timeout livelocks a run),
/// reported at the `[engine]` key that set the value.
fn check_engine(ctx: &Ctx, s: &Scenario) -> Result<(), ScenarioError> {
    let Err(e) = crate::setup::engine_config(s, 0).validate() else {
        return Ok(());
    };
    let key = match e.field.as_str() {
        "blacklist.threshold" => "blacklist_threshold".to_string(),
        "blacklist.window_ms" => "blacklist_window_ms".to_string(),
        "blacklist.cooldown_ms" => "blacklist_cooldown_ms".to_string(),
        field => match field.strip_prefix("tenants.caps.") {
            Some(_) => "tenant_caps".to_string(),
            None => field.to_string(),
        },
    };
    let header = ctx.header("[engine]", 0);
    let at = header.clone().and_then(|h| {
        let from = h.end;
        let i = ctx.src[from..].find(&format!("\n{key}"))? + from + 1;
        Some(i..i + key.len())
    });
    let name = match e.field.strip_prefix("tenants.caps.") {
        Some(tenant) => format!("engine.tenant_caps.{tenant}"),
        None => format!("engine.{key}"),
    };
    Err(ctx.err(at.or(header), e.message_for(&name)))
}

fn check_fault(
    ctx: &Ctx,
    s: &Scenario,
    workers: &BTreeSet<&str>,
    jobs: &BTreeSet<&str>,
    f: &Fault,
    i: usize,
) -> Result<(), ScenarioError> {
    let at = ctx.header("[[fault]]", i);
    let known = |r: &Spanned<String>, set: &BTreeSet<&str>, what: &str| {
        if set.contains(r.get_ref().as_str()) {
            Ok(())
        } else {
            Err(ctx.err(
                Some(r.span()),
                format!("fault names unknown {what} {:?}", r.get_ref()),
            ))
        }
    };
    if f.at_ms >= s.heal_at_ms {
        return Err(ctx.err(
            at,
            format!(
                "fault at {} ms is not before heal_at_ms = {}",
                f.at_ms, s.heal_at_ms
            ),
        ));
    }
    let need = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(ctx.err(at.clone(), format!("a {:?} fault needs {what}", f.kind)))
        }
    };
    match f.kind {
        FaultKind::CrashWorker | FaultKind::PauseWorker | FaultKind::ClockStep => {
            let w = f.worker.as_ref();
            need(w.is_some(), "worker = \"name\"")?;
            if let Some(w) = w {
                known(w, workers, "worker")?;
            }
            if f.kind == FaultKind::PauseWorker {
                need(f.for_ms.is_some(), "for_ms")?;
            }
            if f.kind == FaultKind::ClockStep {
                need(f.delta_ms.is_some(), "delta_ms")?;
            }
        }
        FaultKind::Partition => {
            need(!f.workers.is_empty(), "workers = [\"name\", ...]")?;
            for w in &f.workers {
                known(w, workers, "worker")?;
            }
        }
        FaultKind::CrashCoordinator => need(f.for_ms.is_some(), "for_ms")?,
        FaultKind::CancelJob => {
            let j = f.job.as_ref();
            need(j.is_some(), "job = \"name\"")?;
            if let Some(j) = j {
                known(j, jobs, "job")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
name = "t"
heal_at_ms = 10000
[[worker]]
name = "w1"
[[job]]
name = "j"
[[job.task]]
key = "a"
[[job.task]]
key = "b"
after = ["a"]
"#;

    #[test]
    fn engine_timeouts_below_their_floors_are_refused_at_their_key() {
        let src = OK.replace(
            "[[worker]]",
            "[engine]\ngrant_ttl_ms = 500\nliveness_timeout_ms = 0\n\n[[worker]]",
        );
        let e = load("zero.toml", &src).unwrap_err();
        assert_eq!(
            e.to_string(),
            "zero.toml:6:1: engine.liveness_timeout_ms must be at least 1000 ms"
        );
        let src = OK.replace(
            "[[worker]]",
            "[engine]\ntenant_caps = { t = 0 }\n\n[[worker]]",
        );
        let e = load("caps.toml", &src).unwrap_err();
        assert_eq!(e.line, 5);
        assert!(
            e.message
                .starts_with("engine.tenant_caps.t must be at least 1"),
            "{e}"
        );
    }

    #[test]
    fn a_valid_file_loads() {
        let s = load("ok.toml", OK).unwrap();
        assert_eq!(s.jobs[0].tasks[1].after[0].get_ref(), "a");
        assert_eq!(s.workers[0].max_concurrency, 1);
    }

    #[test]
    fn unknown_dependency_points_at_its_line() {
        let src = OK.replace("after = [\"a\"]", "after = [\"zz\"]");
        let e = load("bad.toml", &src).unwrap_err();
        assert_eq!((e.line, e.col), (12, 10), "{e}");
        assert!(e.to_string().starts_with("bad.toml:12:10: "), "{e}");
    }

    #[test]
    fn syntax_and_type_errors_carry_positions() {
        let e = load("x.toml", "name = \"t\"\nheal_at_ms = \"soon\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = load("x.toml", "name = \"t\"\nheal_at_ms = 5\nbogus = 1\n").unwrap_err();
        assert!(e.message.contains("bogus"), "{e}");
    }

    #[test]
    fn fault_fields_and_references_are_checked() {
        let src = format!("{OK}\n[[fault]]\nat_ms = 5\nkind = \"pause_worker\"\nworker = \"w1\"\n");
        let e = load("f.toml", &src).unwrap_err();
        assert!(e.message.contains("for_ms"), "{e}");
        let src =
            format!("{OK}\n[[fault]]\nat_ms = 5\nkind = \"crash_worker\"\nworker = \"nobody\"\n");
        let e = load("f.toml", &src).unwrap_err();
        assert!(e.message.contains("nobody"), "{e}");
        assert_eq!(e.line, 17, "{e}");
    }
}
