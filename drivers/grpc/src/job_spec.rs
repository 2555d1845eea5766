//! The job spec on the wire: `keel.v1.JobSpec` mirrors `keel_engine::JobSpec`. What
//! the engine cannot see (missing messages, unknown enum values, out-of-range numbers)
//! is refused here naming the field; the engine validates the rest on submission.

use crate::proto;
use crate::proto::dep_group::{Kind, OnUnsatisfied};
use crate::proto::stream_mode::Kind as StreamKind;
use crate::validate::invalid;
use keel_engine::{
    DepGroup, GroupKind, JobSpec, Payload, RetryPolicy, StreamMode, TaskSpec, UnsatisfiedPolicy,
};
use tonic::Status;

/// The wire form of an engine spec; [`job_spec_from_proto`] gives the same spec back.
pub fn job_spec_to_proto(spec: &JobSpec) -> proto::JobSpec {
    proto::JobSpec {
        name: spec.name.clone(),
        tenant: spec.tenant.clone(),
        lane: spec.lane.clone(),
        priority: spec.priority,
        deadline_ms: spec.deadline_ms,
        max_concurrency: spec.max_concurrency,
        tasks: spec.tasks.iter().map(task_to_proto).collect(),
        result: spec.result.clone(),
        budgets: crate::budget_spec::budgets_to_proto(&spec.budgets),
    }
}

fn task_to_proto(t: &TaskSpec) -> proto::TaskSpec {
    proto::TaskSpec {
        key: t.key.clone(),
        payload: t.payload.as_bytes().to_vec(),
        capabilities: t.capabilities.clone(),
        deps: t.deps.as_ref().map(|d| {
            let (kind, quorum) = match d.kind {
                GroupKind::AllOf => (Kind::AllOf, 0),
                GroupKind::AnyOf => (Kind::AnyOf, 0),
                GroupKind::Quorum(k) => (Kind::Quorum, k),
            };
            proto::DepGroup {
                kind: kind as i32,
                quorum,
                upstream: d.upstream.clone(),
                on_unsatisfied: match d.on_unsatisfied {
                    UnsatisfiedPolicy::Skip => OnUnsatisfied::Skip,
                    UnsatisfiedPolicy::Cancel => OnUnsatisfied::Cancel,
                } as i32,
            }
        }),
        retry: Some(proto::RetryPolicy {
            max_attempts: t.retry.max_attempts,
            backoff_base_ms: t.retry.backoff_base_ms,
            backoff_factor: t.retry.backoff_factor,
            backoff_max_ms: t.retry.backoff_max_ms,
            jitter_pct: u32::from(t.retry.jitter_pct),
        }),
        attempt_timeout_ms: t.attempt_timeout_ms,
        delay_ms: t.delay_ms,
        priority: t.priority,
        allow_failure: t.allow_failure,
        estimated_ms: t.estimated_ms,
        rate_key: t.rate_key.clone(),
        stream: match t.stream {
            StreamMode::Durable => None,
            mode => Some(stream_to_proto(mode)),
        },
        stream_from: crate::edge_spec::edges_to_proto(&t.stream_from),
    }
}

fn stream_to_proto(mode: StreamMode) -> proto::StreamMode {
    let (kind, frames) = match mode {
        StreamMode::Durable => (StreamKind::Durable, 0),
        StreamMode::Bounded { frames } => (StreamKind::Bounded, frames),
        StreamMode::Newest => (StreamKind::Newest, 0),
    };
    proto::StreamMode {
        kind: kind as i32,
        frames,
    }
}

/// A stream mode from the wire: absent means durable; a present one must say its kind.
fn stream_from_proto(mode: Option<proto::StreamMode>, field: &str) -> Result<StreamMode, Status> {
    let Some(m) = mode else {
        return Ok(StreamMode::Durable);
    };
    match StreamKind::try_from(m.kind) {
        Ok(StreamKind::Durable) => Ok(StreamMode::Durable),
        Ok(StreamKind::Bounded) => Ok(StreamMode::Bounded { frames: m.frames }),
        Ok(StreamKind::Newest) => Ok(StreamMode::Newest),
        Ok(StreamKind::Unspecified) | Err(_) => Err(invalid(
            field,
            "must be KIND_DURABLE, KIND_BOUNDED or KIND_NEWEST",
        )),
    }
}

/// The engine's job spec from the wire. A missing retry policy means the default one;
/// an unset dependency kind or policy is refused rather than guessed.
pub fn job_spec_from_proto(spec: proto::JobSpec) -> Result<JobSpec, Status> {
    let tasks = spec
        .tasks
        .into_iter()
        .enumerate()
        .map(|(i, t)| task_from_proto(i, t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(JobSpec {
        name: spec.name,
        tenant: non_empty_or(spec.tenant, "default"),
        lane: non_empty_or(spec.lane, "default"),
        priority: spec.priority,
        deadline_ms: spec.deadline_ms,
        max_concurrency: spec.max_concurrency,
        tasks,
        result: spec.result,
        budgets: crate::budget_spec::budgets_from_proto(spec.budgets)?,
    })
}

fn non_empty_or(value: String, default: &str) -> String {
    if value.is_empty() {
        default.to_string()
    } else {
        value
    }
}

fn task_from_proto(i: usize, t: proto::TaskSpec) -> Result<TaskSpec, Status> {
    let field = |name: &str| format!("spec.tasks[{i}].{name}");
    let deps = match t.deps {
        None => None,
        Some(d) => {
            let kind = match Kind::try_from(d.kind) {
                Ok(Kind::AllOf) => GroupKind::AllOf,
                Ok(Kind::AnyOf) => GroupKind::AnyOf,
                Ok(Kind::Quorum) => GroupKind::Quorum(d.quorum),
                _ => return Err(invalid(&field("deps.kind"), "must be set to a known kind")),
            };
            if !matches!(kind, GroupKind::Quorum(_)) && d.quorum != 0 {
                return Err(invalid(&field("deps.quorum"), "is only for KIND_QUORUM"));
            }
            let on_unsatisfied = match OnUnsatisfied::try_from(d.on_unsatisfied) {
                Ok(OnUnsatisfied::Unspecified) | Ok(OnUnsatisfied::Skip) => UnsatisfiedPolicy::Skip,
                Ok(OnUnsatisfied::Cancel) => UnsatisfiedPolicy::Cancel,
                Err(_) => return Err(invalid(&field("deps.on_unsatisfied"), "unknown value")),
            };
            Some(DepGroup {
                kind,
                upstream: d.upstream,
                on_unsatisfied,
            })
        }
    };
    let retry = match t.retry {
        None => RetryPolicy::default(),
        Some(r) => RetryPolicy {
            max_attempts: r.max_attempts,
            backoff_base_ms: r.backoff_base_ms,
            backoff_factor: r.backoff_factor,
            backoff_max_ms: r.backoff_max_ms,
            jitter_pct: u8::try_from(r.jitter_pct)
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| invalid(&field("retry.jitter_pct"), "must be at most 100"))?,
        },
    };
    Ok(TaskSpec {
        key: t.key,
        payload: Payload::from(t.payload),
        capabilities: t.capabilities,
        deps,
        retry,
        attempt_timeout_ms: t.attempt_timeout_ms,
        delay_ms: t.delay_ms,
        priority: t.priority,
        allow_failure: t.allow_failure,
        estimated_ms: t.estimated_ms,
        rate_key: t.rate_key,
        stream: stream_from_proto(t.stream, &field("stream.kind"))?,
        stream_from: crate::edge_spec::edges_from_proto(t.stream_from, &field("stream_from"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> JobSpec {
        let mut spec = JobSpec::new(
            "etl",
            vec![
                TaskSpec::new("a").requires(&["gpu"]),
                TaskSpec::new("b").after(GroupKind::Quorum(1), &["a"]),
            ],
        );
        spec.deadline_ms = Some(60_000);
        spec.result = vec!["a".into()];
        let limit = keel_engine::DimensionLimit {
            soft: Some(5),
            hard: Some(9),
        };
        spec.budgets.insert(
            "llm".into(),
            keel_engine::BudgetSpec {
                limits: [("tokens".to_string(), limit)].into(),
                on_hard: keel_engine::OnHard::Revoke,
                reset_every_ms: None,
            },
        );
        spec.tasks[0].payload = Payload::from("hello");
        spec.tasks[0].rate_key = Some("api.example".into());
        spec.tasks[1].stream = StreamMode::Bounded { frames: 7 };
        spec.tasks[1].stream_from = vec![keel_engine::StreamEdge {
            from: "a".into(),
            policy: keel_engine::EdgePolicy::Bounded {
                capacity: 3,
                on_full: keel_engine::OnFull::DropOldest,
            },
        }];
        if let Some(d) = spec.tasks[1].deps.as_mut() {
            d.on_unsatisfied = UnsatisfiedPolicy::Cancel;
        }
        spec
    }

    #[test]
    fn job_spec_round_trips_through_the_wire() {
        let spec = sample();
        assert_eq!(job_spec_from_proto(job_spec_to_proto(&spec)).unwrap(), spec);
    }

    #[test]
    fn a_spec_without_the_result_field_means_the_sinks() {
        let mut wire = job_spec_to_proto(&sample());
        wire.result.clear();
        // An empty repeated field is not on the wire: what a client built before the
        // field existed sends.
        let bytes = prost::Message::encode_to_vec(&wire);
        let decoded: proto::JobSpec = prost::Message::decode(bytes.as_slice()).unwrap();
        assert!(job_spec_from_proto(decoded).unwrap().result.is_empty());
    }

    #[test]
    fn an_unset_dependency_kind_is_refused_naming_the_field() {
        let mut wire = job_spec_to_proto(&sample());
        wire.tasks[1].deps.as_mut().unwrap().kind = 0;
        let err = job_spec_from_proto(wire).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(
            err.message().contains("spec.tasks[1].deps.kind"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn every_stream_mode_round_trips_and_an_unset_kind_is_refused() {
        for mode in [
            StreamMode::Durable,
            StreamMode::Newest,
            StreamMode::Bounded { frames: 1 },
        ] {
            let mut spec = sample();
            spec.tasks[0].stream = mode;
            assert_eq!(job_spec_from_proto(job_spec_to_proto(&spec)).unwrap(), spec);
        }
        let mut wire = job_spec_to_proto(&sample());
        wire.tasks[1].stream.as_mut().unwrap().kind = 0;
        let err = job_spec_from_proto(wire).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(
            err.message().contains("spec.tasks[1].stream.kind"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn jitter_over_100_percent_is_refused() {
        let mut wire = job_spec_to_proto(&sample());
        wire.tasks[0].retry.as_mut().unwrap().jitter_pct = 300;
        let err = job_spec_from_proto(wire).unwrap_err();
        assert!(err.message().contains("spec.tasks[0].retry.jitter_pct"));
    }
}
