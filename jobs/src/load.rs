//! Reading a job spec file: TOML into the engine's `JobSpec`, checked by the engine's
//! own `validate_job`, with every refusal mapped back to the line and column of the
//! offending key. Pure: the caller reads the file and passes its text.

use crate::error::SpecError;
use crate::job_file::{Defaults, DepKind, Deps, JobFile, OnUnsatisfied, RetryFile, TaskFile};
use crate::locate::locate;
use crate::spans::{Located, Spans, TaskSpans};
use keel_engine::{
    validate_job, DepGroup, GroupKind, JobError, JobSpec, Limits, Payload, RetryPolicy, TaskSpec,
    UnsatisfiedPolicy, ValidJob,
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
    let (stream_from, edge_spans) = match t.stream_from {
        Some(list) => {
            let span = list.span();
            let (edges, items): (Vec<_>, Vec<_>) = list
                .into_inner()
                .into_iter()
                .map(|e| {
                    let span = e.span();
                    (e.into_inner().0, span)
                })
                .unzip();
            (edges, Some((span, items)))
        }
        None => (Vec::new(), None),
    };
    let spans = TaskSpans {
        id: t.id.span(),
        deps: deps_spans,
        quorum,
        stream_from: edge_spans,
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
        stream: t.stream.map_or(keel_engine::StreamMode::Durable, |s| s.0),
        stream_from,
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
