//! Cases written by hand for the `extreme_values` checks: reported inputs, and the
//! extremes of a feature the drawn cases reach too rarely to rely on.

use super::extreme::*;

/// The reported job file as a case: backoff and cap at `u64::MAX`, full jitter, a
/// failure (where `span + 1` overflowed), then a restart and the replay of the log,
/// as the coordinator's recovery does.
pub fn retry_overflow_case() -> Case {
    let config = plain_config();
    let task = TaskDraw {
        max_attempts: U32::Any(3),
        backoff_base_ms: U64::Max,
        backoff_factor: U32::Two,
        backoff_max_ms: U64::Max,
        jitter_pct: 100,
        ..plain_task()
    };
    let steps = vec![
        register(),
        Step::Submit(job(vec![task])),
        Step::RequestWork {
            worker: 0,
            credits: U32::One,
        },
        Step::Accept { grant: 0 },
        Step::Fail {
            lease: 0,
            permanent: false,
            error: Len::One,
        },
        Step::Restart,
        Step::SetClock { at: U64::Max },
    ];
    Case { config, steps }
}

/// A producer and a consumer on a bounded edge of capacity 1 that drops the oldest
/// frames: three frames emitted, the edge read from the start and from `u64::MAX` with
/// limits of `u32::MAX` and 0, acknowledgements at 1 and at `u64::MAX` (past the end),
/// a restart, and the producer emitting again from far ahead.
pub fn streaming_extremes_case() -> Case {
    let edge = EdgeDraw {
        consumer: 1,
        producer: 0,
        policy: 1,
        capacity: U32::One,
        on_full: 1,
    };
    let read = |cursor, limit| Step::ReadEdge {
        lease: 0,
        from: 0,
        cursor,
        limit,
    };
    let ack = |cursor| Step::Ack {
        lease: 0,
        from: 0,
        cursor,
    };
    let steps = vec![
        register(),
        Step::SubmitStreaming {
            job: job(vec![plain_task(), plain_task()]),
            edges: vec![edge],
        },
        Step::Take {
            worker: 0,
            then: Then::Hold,
        },
        Step::Emit {
            lease: 0,
            from: U64::Zero,
            frames: vec![Len::One; 3],
        },
        Step::Take {
            worker: 0,
            then: Then::Hold,
        },
        read(None, U32::Max),
        read(None, U32::Zero),
        read(Some(U64::Max), U32::Zero),
        ack(U64::One),
        ack(U64::Max),
        Step::Restart,
        read(Some(U64::Zero), U32::One),
        Step::Emit {
            lease: 1,
            from: U64::Max,
            frames: vec![Len::One],
        },
        Step::SetClock { at: U64::Max },
    ];
    Case {
        config: plain_config(),
        steps,
    }
}

fn register() -> Step {
    Step::Register {
        worker: 0,
        instance: Some(U64::One),
        caps: 0,
        lanes: 0,
        max_concurrency: U32::Any(4),
    }
}

fn job(tasks: Vec<TaskDraw>) -> JobDraw {
    JobDraw {
        name: 0,
        tenant: 0,
        lane: 0,
        priority: I32::Zero,
        deadline_ms: None,
        max_concurrency: None,
        tasks,
    }
}

/// A configuration of ordinary values.
fn plain_config() -> ConfigDraw {
    ConfigDraw {
        seed: U64::Zero,
        grant_ttl_ms: U64::Any(5_000),
        lease_ttl_ms: U64::Any(30_000),
        liveness_timeout_ms: U64::Max,
        max_losses: U32::Any(5),
        retention_ms: U64::Any(3_600_000),
        blacklist: (U32::Zero, U64::Zero, U64::Zero),
        default_cap: None,
        caps: vec![],
        weights: vec![],
        limits: [U32::Any(16); 17],
        max_stored_bytes: U64::Any(1 << 20),
        rates: vec![],
    }
}

/// A task of ordinary values, no dependencies and a durable stream.
fn plain_task() -> TaskDraw {
    TaskDraw {
        payload: Len::Zero,
        caps: 0,
        deps: vec![],
        group: Group::AllOf,
        cancel_on_unsatisfied: false,
        max_attempts: U32::Any(3),
        backoff_base_ms: U64::Any(100),
        backoff_factor: U32::Two,
        backoff_max_ms: U64::Any(1_000),
        jitter_pct: 0,
        attempt_timeout_ms: None,
        delay_ms: U64::Zero,
        priority: None,
        allow_failure: false,
        estimated_ms: None,
        rate_key: None,
        stream: None,
    }
}
