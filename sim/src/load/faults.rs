//! A fault's time, the fields its kind needs, and the workers and jobs it names.

use super::{Ctx, Declared};
use crate::scenario::{Fault, FaultKind, Scenario};
use crate::ScenarioError;

pub(super) fn check(
    ctx: &Ctx,
    s: &Scenario,
    declared: &Declared,
    f: &Fault,
    i: usize,
) -> Result<(), ScenarioError> {
    let at = ctx.header("[[fault]]", i);
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
                ctx.known(w, &declared.workers, "worker", "fault")?;
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
                ctx.known(w, &declared.workers, "worker", "fault")?;
            }
        }
        FaultKind::CrashCoordinator
        | FaultKind::FailAppend
        | FaultKind::TornAppend
        | FaultKind::CorruptLog => need(f.for_ms.is_some(), "for_ms")?,
        FaultKind::SlowFsync => {
            need(f.for_ms.is_some(), "for_ms")?;
            need(f.delay_ms.is_some(), "delay_ms")?;
        }
        FaultKind::CancelJob => {
            let j = f.job.as_ref();
            need(j.is_some(), "job = \"name\"")?;
            if let Some(j) = j {
                ctx.known(j, &declared.jobs, "job", "fault")?;
            }
        }
    }
    Ok(())
}
