//! Maps an engine refusal of a job file back to the key it is about: the span of the
//! task, dependency, capability or field at fault, and a message naming it.

use crate::spans::{Located, Spans, TaskSpans};
use keel_engine::{check_name, JobError, JobSpec, Limits, TaskSpec};
use std::ops::Range;

/// The span of a refusal about the whole file.
const WHOLE: Range<usize> = 0..0;

/// Maps an engine refusal to the span of the key it is about, and a message naming it.
pub(crate) fn locate(
    spec: &JobSpec,
    spans: &Spans,
    e: &JobError,
    src: &str,
    lim: &Limits,
) -> Located {
    let index = |key: &str| spec.tasks.iter().position(|t| t.key == key);
    let task = |key: &str| index(key).and_then(|i| spans.tasks.get(i));
    let id_span = |key: &str| task(key).map(|t| t.id.clone());
    let span = match e {
        JobError::Empty | JobError::TooManyTasks { .. } => Some(WHOLE),
        JobError::InvalidBudget(why) => {
            let span = crate::budget_load::locate(&spans.budgets, why);
            return (span.unwrap_or(WHOLE), crate::budget_load::message(why));
        }
        JobError::BadName { field, why } => {
            return bad_name(spec, spans, field, why, lim).unwrap_or((WHOLE, e.to_string()))
        }
        JobError::DuplicateTask { key } => {
            if let Some(found) = duplicate_task(spec, spans, key, src) {
                return found;
            }
            None
        }
        JobError::UnknownDependency { .. }
        | JobError::DuplicateDependency { .. }
        | JobError::BadStreamEdge { .. } => dependency_span(spec, spans, e),
        JobError::Cycle { cycle } => match cycle.as_slice() {
            [first, second, ..] => dep_span(spec, spans, second, first, 0),
            _ => None,
        },
        JobError::EmptyGroup { task: t } | JobError::TooManyDependencies { task: t, .. } => {
            task(t).and_then(|s| s.deps.as_ref()).map(|d| d.0.clone())
        }
        JobError::QuorumOutOfRange { task: t, .. } => task(t).and_then(|s| s.quorum.clone()),
        JobError::TooDeep { task: t, .. } => id_span(t),
        JobError::PayloadTooLarge { task: t, .. } => task(t).and_then(|s| s.payload.clone()),
        JobError::TooManyCapabilities { task: t, .. } => task(t)
            .and_then(|s| s.capabilities.as_ref())
            .map(|c| c.0.clone()),
        JobError::Capability {
            task: t,
            token,
            why,
        } => {
            let nth = usize::from(matches!(why, keel_engine::CapabilityIssue::Duplicate));
            index(t).and_then(|i| capability_span(&spec.tasks[i], spans.tasks.get(i)?, token, nth))
        }
        JobError::UnknownResultTask { key } => result_span(spec, spans, key, 0),
        JobError::DuplicateResultTask { key } => result_span(spec, spans, key, 1),
        JobError::BadRetry { task: t, .. } => task(t)
            .and_then(|s| s.retry.clone())
            .or_else(|| spans.defaults_retry.clone()),
        JobError::BadField { task: t, field, .. } => {
            field_span(spans, t.as_deref().and_then(task), field)
        }
    };
    let span = span
        .or_else(|| task_of(e).and_then(id_span))
        .unwrap_or(WHOLE);
    (span, message(e))
}

/// The second definition of task id `key`, with a message naming the line of the first.
fn duplicate_task(spec: &JobSpec, spans: &Spans, key: &str, source: &str) -> Option<Located> {
    let mut ids = spec
        .tasks
        .iter()
        .zip(&spans.tasks)
        .filter(|(t, _)| t.key == key);
    let first = ids.next().map(|(_, s)| s.id.start)?;
    let (_, second) = ids.next()?;
    let line = source.get(..first).map_or(0, |s| s.matches('\n').count()) + 1;
    let msg = format!("task id {key:?} is defined twice (first on line {line})");
    Some((second.id.clone(), msg))
}

/// The span of the `nth` (from 0) occurrence of capability `token` in a task's list.
fn capability_span(
    task: &TaskSpec,
    spans: &TaskSpans,
    token: &str,
    nth: usize,
) -> Option<Range<usize>> {
    let items = &spans.capabilities.as_ref()?.1;
    let hits = task
        .capabilities
        .iter()
        .zip(items)
        .filter(|(c, _)| *c == token);
    hits.map(|(_, r)| r.clone()).nth(nth)
}

/// The refusal's message, naming fields as the file spells them.
fn message(e: &JobError) -> String {
    match e {
        JobError::UnknownResultTask { key } => format!("job.result names unknown task id {key:?}"),
        JobError::DuplicateResultTask { key } => format!("job.result lists task id {key:?} twice"),
        // Name the retry fields as the file spells them.
        JobError::BadRetry { task, why } => {
            let why = why
                .replace("backoff_max_ms", "backoff_max")
                .replace("backoff_base_ms", "backoff");
            format!("task {task:?} retry policy: {why}")
        }
        // Name the fields as the file spells them.
        JobError::BadField { task, field, why } => {
            let field = match field.as_str() {
                "deadline_ms" => "job.deadline",
                "attempt_timeout_ms" => "attempt_timeout",
                other => other,
            };
            match task {
                Some(t) => format!("task {t:?} {field}: {why}"),
                None => format!("{field}: {why}"),
            }
        }
        _ => e.to_string(),
    }
}

fn bad_name(
    spec: &JobSpec,
    spans: &Spans,
    field: &str,
    why: &str,
    limits: &Limits,
) -> Option<Located> {
    let (span, what) = match field {
        "job name" => (spans.name.clone(), "job.name"),
        "tenant" => (
            spans.tenant.clone().unwrap_or(spans.job.clone()),
            "job.tenant",
        ),
        "lane" => (spans.lane.clone().unwrap_or(spans.job.clone()), "job.lane"),
        "task key" => {
            let bad = spec
                .tasks
                .iter()
                .zip(&spans.tasks)
                .find(|(t, _)| check_name("task key", &t.key, limits.max_name_len).is_err())?;
            return Some((
                bad.1.id.clone(),
                format!("task id {:?} is invalid: {why}", bad.0.key),
            ));
        }
        _ => return None,
    };
    Some((span, format!("{what} is invalid: {why}")))
}

/// The span of the `nth` occurrence of `dep` in the dependency list of task `key`.
fn dep_span(
    spec: &JobSpec,
    spans: &Spans,
    key: &str,
    dep: &str,
    nth: usize,
) -> Option<Range<usize>> {
    let i = spec.tasks.iter().position(|t| t.key == key)?;
    let group = spec.tasks[i].deps.as_ref()?;
    let items = &spans.tasks.get(i)?.deps.as_ref()?.1;
    let hits = group.upstream.iter().zip(items).filter(|(u, _)| *u == dep);
    hits.map(|(_, r)| r.clone()).nth(nth)
}

/// The span of a refused field: the job's deadline, or the attempt timeout of the
/// task whose spans are `task`. The loader refuses `max_concurrency = 0` itself;
/// anything else points at the task, or the job.
fn field_span(spans: &Spans, task: Option<&TaskSpans>, field: &str) -> Option<Range<usize>> {
    match (task, field) {
        (None, "deadline_ms") => spans.deadline.clone(),
        (Some(t), "attempt_timeout_ms") => t.attempt_timeout.clone(),
        _ => None,
    }
}

/// The span of the dependency or streaming edge an error names: the (second, for a
/// repeat) entry of `deps`, else of `stream_from`, naming it.
fn dependency_span(spec: &JobSpec, spans: &Spans, e: &JobError) -> Option<Range<usize>> {
    match e {
        JobError::UnknownDependency { task: t, dep } => {
            dep_span(spec, spans, t, dep, 0).or_else(|| edge_span(spec, spans, t, dep, 0))
        }
        JobError::DuplicateDependency { task: t, dep } => dep_span(spec, spans, t, dep, 1)
            .or_else(|| edge_span(spec, spans, t, dep, 1))
            .or_else(|| edge_span(spec, spans, t, dep, 0)),
        JobError::BadStreamEdge { task: t, from, .. } => edge_span(spec, spans, t, from, 0),
        _ => None,
    }
}

/// The span of the `nth` entry of task `key`'s `stream_from` naming `from`.
fn edge_span(
    spec: &JobSpec,
    spans: &Spans,
    key: &str,
    from: &str,
    nth: usize,
) -> Option<Range<usize>> {
    let i = spec.tasks.iter().position(|t| t.key == key)?;
    let items = &spans.tasks.get(i)?.stream_from.as_ref()?.1;
    let edges = spec.tasks[i].stream_from.iter().zip(items);
    edges
        .filter(|(e, _)| e.from == from)
        .map(|(_, r)| r.clone())
        .nth(nth)
}

/// The span of the `nth` occurrence of `key` in `job.result`.
fn result_span(spec: &JobSpec, spans: &Spans, key: &str, nth: usize) -> Option<Range<usize>> {
    let hits = spec
        .result
        .iter()
        .zip(&spans.result)
        .filter(|(k, _)| *k == key);
    hits.map(|(_, r)| r.clone()).nth(nth)
}

fn task_of(e: &JobError) -> Option<&str> {
    match e {
        JobError::UnknownDependency { task, .. }
        | JobError::DuplicateDependency { task, .. }
        | JobError::EmptyGroup { task }
        | JobError::QuorumOutOfRange { task, .. }
        | JobError::TooManyDependencies { task, .. }
        | JobError::TooDeep { task, .. }
        | JobError::PayloadTooLarge { task, .. }
        | JobError::TooManyCapabilities { task, .. }
        | JobError::Capability { task, .. }
        | JobError::BadRetry { task, .. }
        | JobError::BadStreamEdge { task, .. } => Some(task),
        JobError::BadField { task, .. } => task.as_deref(),
        _ => None,
    }
}
