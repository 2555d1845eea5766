//! Reading a job spec file: TOML into the engine's `JobSpec`, checked by the engine's
//! own `validate_job`, with every refusal mapped back to the line and column of the
//! offending key. Pure: the caller reads the file and passes its text.

use crate::error::SpecError;
use crate::job_file::{Defaults, DepKind, Deps, JobFile, OnUnsatisfied, RetryFile, TaskFile};
use keel_engine::{
    check_name, validate_job, DepGroup, GroupKind, JobError, JobSpec, Limits, Payload, RetryPolicy,
    TaskSpec, UnsatisfiedPolicy, ValidJob,
};
use std::ops::Range;
use toml::Spanned;

/// A job spec that passed validation, with the dependency structure the planner reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedJob {
    spec: JobSpec,
    valid: ValidJob,
}

impl LoadedJob {
    /// Validates a spec built in code (benches, tests, generated workloads).
    pub fn from_spec(spec: JobSpec, limits: &Limits) -> Result<Self, JobError> {
        let valid = validate_job(&spec, limits)?;
        Ok(LoadedJob { spec, valid })
    }

    /// The engine's job submission.
    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// The spec as the engine validated it, with its dependencies resolved.
    pub fn valid(&self) -> &ValidJob {
        &self.valid
    }

    /// The spec, to submit.
    pub fn into_spec(self) -> JobSpec {
        self.spec
    }
}

/// Parses and validates the job spec `source`, read from `file` (used in reports).
pub fn load_job(file: &str, source: &str, limits: &Limits) -> Result<LoadedJob, SpecError> {
    let parsed: JobFile = toml::from_str(source).map_err(|e| toml_error(file, source, &e))?;
    let at = |span: Range<usize>, msg: String| SpecError::at(file, source, span, msg);
    let (spec, spans) = convert(parsed).map_err(|(span, msg)| at(span, msg))?;
    let valid = validate_job(&spec, limits).map_err(|e| {
        let (span, msg) = locate(&spec, &spans, &e, source, limits);
        at(span, msg)
    })?;
    Ok(LoadedJob { spec, valid })
}

/// Reports a TOML syntax, unknown-field or wrong-type error at the span toml gives,
/// naming the field when the span is the value of a `key = value` pair.
pub(crate) fn toml_error(file: &str, source: &str, e: &toml::de::Error) -> SpecError {
    let mut message = e.message().trim_end().replace('\n', "; ");
    if message.is_empty() {
        // toml gives no message for a few syntax errors (a control character in a
        // comment, a key with no value at the end of the file).
        message = "invalid TOML syntax".to_string();
    }
    match e.span() {
        Some(span) => {
            let message = match field_before(source, span.start) {
                Some(key) => format!("field `{key}`: {message}"),
                None => message,
            };
            SpecError::at(file, source, span, message)
        }
        None => SpecError::whole_file(file, source, message),
    }
}

/// The bare key of `key = ` right before byte `at` on the same line, if any.
fn field_before(source: &str, at: usize) -> Option<&str> {
    let before = source.get(..at)?;
    let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
    let lhs = line.trim_end().strip_suffix('=')?.trim_end();
    let is_key = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    // The key is the run of key characters that ends the left-hand side; the
    // character before it may be several bytes long.
    let start = lhs
        .char_indices()
        .rev()
        .find(|&(_, c)| !is_key(c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let key = &lhs[start..];
    (!key.is_empty()).then_some(key)
}

/// Where each part of the job sits in the file, indexed like `JobSpec::tasks`.
struct Spans {
    job: Range<usize>,
    name: Range<usize>,
    tenant: Option<Range<usize>>,
    lane: Option<Range<usize>>,
    defaults_retry: Option<Range<usize>>,
    deadline: Option<Range<usize>>,
    /// Spans of the result task ids, in the order of `JobSpec::result`.
    result: Vec<Range<usize>>,
    tasks: Vec<TaskSpans>,
    budgets: crate::budget_load::BudgetSpans,
}

struct TaskSpans {
    id: Range<usize>,
    /// Spans of the upstream ids, in the order of `DepGroup::upstream`.
    deps: Option<(Range<usize>, Vec<Range<usize>>)>,
    quorum: Option<Range<usize>>,
    /// Spans of the capability tokens, in the order of `TaskSpec::capabilities`.
    capabilities: Option<(Range<usize>, Vec<Range<usize>>)>,
    payload: Option<Range<usize>>,
    retry: Option<Range<usize>>,
    /// The task's own `attempt_timeout`, else the one in `[defaults]`.
    attempt_timeout: Option<Range<usize>>,
}

type Located = (Range<usize>, String);

fn convert(file: JobFile) -> Result<(JobSpec, Spans), Located> {
    let job_span = file.job.span();
    let job = file.job.into_inner();
    let defaults = file.defaults;
    if let Some(cap) = &defaults.max_concurrency {
        if *cap.get_ref() == 0 {
            let msg = "defaults.max_concurrency must be at least 1".to_string();
            return Err((cap.span(), msg));
        }
    }
    let mut tasks = Vec::with_capacity(file.task.len());
    let mut task_spans = Vec::with_capacity(file.task.len());
    for t in file.task {
        let (task, spans) = convert_task(t.into_inner(), &defaults)?;
        tasks.push(task);
        task_spans.push(spans);
    }
    let (result, result_spans) = result_tasks(job.result)?;
    let (budgets, budget_spans) = crate::budget_load::convert(file.budgets)?;
    let spans = Spans {
        job: job_span,
        name: job.name.span(),
        tenant: job.tenant.as_ref().map(|s| s.span()),
        lane: job.lane.as_ref().map(|s| s.span()),
        defaults_retry: defaults.retry.as_ref().map(|r| r.span()),
        deadline: job.deadline.as_ref().map(|d| d.span()),
        result: result_spans,
        tasks: task_spans,
        budgets: budget_spans,
    };
    let spec = JobSpec {
        name: job.name.into_inner(),
        tenant: job
            .tenant
            .map_or_else(|| "default".into(), |s| s.into_inner()),
        lane: job
            .lane
            .map_or_else(|| "default".into(), |s| s.into_inner()),
        priority: job.priority,
        deadline_ms: job.deadline.map(|m| m.into_inner().0),
        max_concurrency: defaults.max_concurrency.map(|c| c.into_inner()),
        tasks,
        result,
        budgets,
    };
    Ok((spec, spans))
}

/// One `[[task]]` as the engine's task spec, with the spans its errors point at; its
/// retry and attempt timeout fall back to `[defaults]`.
fn convert_task(t: TaskFile, defaults: &Defaults) -> Result<(TaskSpec, TaskSpans), Located> {
    let default_retry = defaults.retry.as_ref().map(|r| r.get_ref());
    let payload = payload(&t)?;
    let (deps, deps_spans, quorum) = match t.deps {
        Some(d) => {
            let span = d.span();
            let (group, items, quorum) = dep_group(d.into_inner(), t.on_unsatisfied);
            (Some(group), Some((span, items)), quorum)
        }
        None => (None, None, None),
    };
    let (capabilities, cap_spans) = match t.capabilities {
        Some(c) => {
            let span = c.span();
            let (values, items) = split(c.into_inner());
            (values, Some((span, items)))
        }
        None => (Vec::new(), None),
    };
    let spans = TaskSpans {
        id: t.id.span(),
        deps: deps_spans,
        quorum,
        capabilities: cap_spans,
        payload: t.command.as_ref().or(t.data.as_ref()).map(|p| p.span()),
        retry: t.retry.as_ref().map(|r| r.span()),
        attempt_timeout: t
            .attempt_timeout
            .as_ref()
            .or(defaults.attempt_timeout.as_ref())
            .map(|m| m.span()),
    };
    let task = TaskSpec {
        key: t.id.into_inner(),
        payload,
        capabilities,
        deps,
        retry: retry_policy(t.retry.as_ref().map(|r| r.get_ref()), default_retry),
        attempt_timeout_ms: t
            .attempt_timeout
            .as_ref()
            .or(defaults.attempt_timeout.as_ref())
            .map(|m| m.get_ref().0),
        delay_ms: t.delay.map_or(0, |m| m.0),
        priority: t.priority,
        allow_failure: t.allow_failure,
        estimated_ms: t.estimate.or(defaults.estimate).map(|m| m.0),
        rate_key: t.rate_key.or_else(|| defaults.rate_key.clone()),
    };
    Ok((task, spans))
}

/// `job.result` as task ids and their spans. Left out, the result is the sink tasks; an
/// empty list is refused, since it would read as "no result" yet mean the sinks.
fn result_tasks(
    result: Option<Spanned<Vec<Spanned<String>>>>,
) -> Result<(Vec<String>, Vec<Range<usize>>), Located> {
    match result {
        None => Ok((Vec::new(), Vec::new())),
        Some(r) if r.get_ref().is_empty() => Err((
            r.span(),
            "job.result must name at least one task id; leave it out for the sink tasks"
                .to_string(),
        )),
        Some(r) => Ok(split(r.into_inner())),
    }
}

fn payload(t: &TaskFile) -> Result<Payload, Located> {
    match (&t.command, &t.data) {
        (Some(_), Some(data)) => Err((
            data.span(),
            format!(
                "task {:?} sets both command and data; its payload is one or the other",
                t.id.get_ref()
            ),
        )),
        (Some(p), None) | (None, Some(p)) => Ok(Payload::from(p.get_ref().as_str())),
        (None, None) => Ok(Payload::default()),
    }
}

fn dep_group(
    deps: Deps,
    on_unsatisfied: Option<OnUnsatisfied>,
) -> (DepGroup, Vec<Range<usize>>, Option<Range<usize>>) {
    let (kind, quorum) = match deps.kind {
        DepKind::AllOf => (GroupKind::AllOf, None),
        DepKind::AnyOf => (GroupKind::AnyOf, None),
        DepKind::Quorum(k) => (GroupKind::Quorum(*k.get_ref()), Some(k.span())),
    };
    let (upstream, items) = split(deps.upstream);
    let on_unsatisfied = match on_unsatisfied {
        Some(OnUnsatisfied::Cancel) => UnsatisfiedPolicy::Cancel,
        Some(OnUnsatisfied::Skip) | None => UnsatisfiedPolicy::Skip,
    };
    let group = DepGroup {
        kind,
        upstream,
        on_unsatisfied,
    };
    (group, items, quorum)
}

fn split(items: Vec<Spanned<String>>) -> (Vec<String>, Vec<Range<usize>>) {
    items
        .into_iter()
        .map(|s| (s.span(), s.into_inner()))
        .map(|(r, v)| (v, r))
        .unzip()
}

/// Field-wise: the task's own setting, else the job default, else the engine default.
fn retry_policy(task: Option<&RetryFile>, defaults: Option<&RetryFile>) -> RetryPolicy {
    let layers = [task, defaults];
    fn first<T>(layers: &[Option<&RetryFile>], get: impl Fn(&RetryFile) -> Option<T>) -> Option<T> {
        layers.iter().flatten().find_map(|r| get(r))
    }
    let base = RetryPolicy::default();
    RetryPolicy {
        max_attempts: first(&layers, |r| r.max_attempts).unwrap_or(base.max_attempts),
        backoff_base_ms: first(&layers, |r| r.backoff).map_or(base.backoff_base_ms, |m| m.0),
        backoff_factor: first(&layers, |r| r.backoff_factor).unwrap_or(base.backoff_factor),
        backoff_max_ms: first(&layers, |r| r.backoff_max).map_or(base.backoff_max_ms, |m| m.0),
        jitter_pct: first(&layers, |r| r.jitter_pct).unwrap_or(base.jitter_pct),
    }
}

/// Maps an engine refusal to the span of the key it is about, and a message naming it.
fn locate(spec: &JobSpec, spans: &Spans, e: &JobError, source: &str, limits: &Limits) -> Located {
    let index = |key: &str| spec.tasks.iter().position(|t| t.key == key);
    let task = |key: &str| index(key).and_then(|i| spans.tasks.get(i));
    let id_span = |key: &str| task(key).map(|t| t.id.clone());
    let whole = 0..0;
    let span = match e {
        JobError::Empty | JobError::TooManyTasks { .. } => Some(whole.clone()),
        JobError::InvalidBudget(why) => {
            let span = crate::budget_load::locate(&spans.budgets, why);
            return (span.unwrap_or(whole), crate::budget_load::message(why));
        }
        JobError::BadName { field, why } => {
            return bad_name(spec, spans, field, why, limits).unwrap_or((whole, e.to_string()))
        }
        JobError::DuplicateTask { key } => {
            if let Some(found) = duplicate_task(spec, spans, key, source) {
                return found;
            }
            None
        }
        JobError::UnknownDependency { task: t, dep } => dep_span(spec, spans, t, dep, 0),
        JobError::DuplicateDependency { task: t, dep } => dep_span(spec, spans, t, dep, 1),
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
        JobError::BadField {
            task: None, field, ..
        } if field == "deadline_ms" => spans.deadline.clone(),
        JobError::BadField {
            task: Some(t),
            field,
            ..
        } if field == "attempt_timeout_ms" => task(t).and_then(|s| s.attempt_timeout.clone()),
        // The loader refuses `max_concurrency = 0` itself; anything else points at the
        // task, or the job.
        JobError::BadField { .. } => None,
    };
    let span = span
        .or_else(|| task_of(e).and_then(id_span))
        .unwrap_or(whole);
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
        | JobError::BadRetry { task, .. } => Some(task),
        JobError::BadField { task, .. } => task.as_deref(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::field_before;

    #[test]
    fn the_field_before_a_value_is_found_after_multibyte_characters() {
        let src = "𑌣 key = 1";
        assert_eq!(field_before(src, src.len() - 1), Some("key"));
        let src = "é𑌣= 1";
        assert_eq!(field_before(src, src.len() - 1), None);
        assert_eq!(field_before("a = 1", 99), None);
    }
}
