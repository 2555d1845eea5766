//! The proptest strategies behind the `extreme_values` checks: every numeric field of
//! the configuration, the job spec and the commands is drawn from the edges of its type
//! as often as from ordinary values.

use super::extreme::*;
use proptest::prelude::*;
use std::ops::Range;

pub(super) fn u64_edges() -> impl Strategy<Value = U64> {
    prop_oneof![
        Just(U64::Zero),
        Just(U64::One),
        Just(U64::Two),
        Just(U64::U32Max),
        Just(U64::U32MaxLess1),
        Just(U64::MaxLess1),
        Just(U64::Max),
    ]
}

/// An edge one time in `1 + normal_weight`, else a value from `normal`.
pub(super) fn u64_in(normal: Range<u64>, normal_weight: u32) -> impl Strategy<Value = U64> {
    prop_oneof![
        normal_weight => normal.prop_map(U64::Any),
        1 => u64_edges(),
    ]
}

pub(super) fn u32_in(normal: Range<u32>, normal_weight: u32) -> impl Strategy<Value = U32> {
    let edges = prop_oneof![
        Just(U32::Zero),
        Just(U32::One),
        Just(U32::Two),
        Just(U32::MaxLess1),
        Just(U32::Max),
    ];
    prop_oneof![normal_weight => normal.prop_map(U32::Any), 1 => edges]
}

/// For fields where validation refuses 0: the other edges as often as `u32_in`'s, 0
/// one time in 40, so most specs are admitted and carry their edges into the engine.
pub(super) fn u32_pos(normal: Range<u32>) -> impl Strategy<Value = U32> {
    let edges = prop_oneof![
        Just(U32::One),
        Just(U32::Two),
        Just(U32::MaxLess1),
        Just(U32::Max),
    ];
    prop_oneof![30 => normal.prop_map(U32::Any), 9 => edges, 1 => Just(U32::Zero)]
}

pub(super) fn u64_pos(normal: Range<u64>) -> impl Strategy<Value = U64> {
    let edges = prop_oneof![
        Just(U64::One),
        Just(U64::Two),
        Just(U64::U32Max),
        Just(U64::U32MaxLess1),
        Just(U64::MaxLess1),
        Just(U64::Max),
    ];
    prop_oneof![30 => normal.prop_map(U64::Any), 9 => edges, 1 => Just(U64::Zero)]
}

pub(super) fn i32_any() -> impl Strategy<Value = I32> {
    prop_oneof![
        2 => (-5i32..5).prop_map(I32::Any),
        1 => prop_oneof![
            Just(I32::Zero),
            Just(I32::One),
            Just(I32::MinusOne),
            Just(I32::Min),
            Just(I32::MinPlus1),
            Just(I32::Max),
        ],
    ]
}

/// Payload lengths: at the limit often, past it (refused) one time in 20.
pub(super) fn len() -> impl Strategy<Value = Len> {
    prop_oneof![
        4 => Just(Len::Zero),
        4 => Just(Len::One),
        5 => Just(Len::AtLimit),
        1 => Just(Len::OverLimit),
        6 => (0u16..16).prop_map(Len::Any),
    ]
}

/// Jitter percentages; above 100 is refused by validation.
pub(super) fn jitter() -> impl Strategy<Value = u8> {
    prop_oneof![
        24 => prop_oneof![Just(0u8), Just(1), Just(50), Just(99), Just(100), Just(100)],
        1 => prop_oneof![Just(101u8), Just(u8::MAX)],
        16 => 0u8..=100,
    ]
}

/// Timeouts around their floors and far past them; limits small enough that short
/// runs reach them, each one sometimes at an edge instead.
pub(super) fn config_draw() -> impl Strategy<Value = ConfigDraw> {
    let ms = |lo: u64, hi: u64| u64_in(lo..hi, 6);
    let timeouts = (
        u64_in(0..u64::MAX, 1),
        ms(100, 5_000),
        ms(1_000, 30_000),
        ms(1_000, 30_000),
        u32_in(0..6, 6),
        ms(1_000, 60_000),
    );
    let tenants = (
        (u32_in(1..5, 3), u64_in(0..5_000, 3), u64_in(0..5_000, 3)),
        proptest::option::weighted(0.3, u32_in(1..4, 3)),
        proptest::collection::vec((0u8..5, u32_in(1..4, 3)), 0..3),
        proptest::collection::vec((0u8..5, u32_in(1..4, 3)), 0..3),
    );
    // Ordinary limits admit what the steps send, so runs get far; each limit is at an
    // edge one time in 25.
    let small = |lo: u32, hi: u32| u32_in(lo..hi, 24);
    let limits = [
        small(4, 7),
        small(2, 5),
        small(2, 6),
        small(16, 256),
        small(3, 5),
        small(3, 5),
        small(3, 8),
        small(8, 32),
        small(2, 6),
        small(4, 6),
        small(4, 8),
        small(4, 8),
        small(3, 5),
        small(1, 4),
        small(3, 10),
        small(6, 30),
        small(2, 6),
    ];
    // One config in four paces grants, with buckets slow enough to hold tasks back
    // within a run and fast enough to let them go.
    let bucket = (
        0u8..3,
        any::<u8>(),
        u32_pos(1..4),
        u32_pos(50..2_000),
        u32_pos(1..4),
    );
    let rates = prop_oneof![
        3 => Just(Vec::new()),
        1 => proptest::collection::vec(bucket, 1..3),
    ];
    (timeouts, tenants, limits, u64_in(512..8_192, 12), rates).prop_map(
        |(
            (seed, grant, lease, live, losses, retention),
            (blacklist, dcap, caps, weights),
            limits,
            stored,
            rates,
        )| {
            ConfigDraw {
                seed,
                grant_ttl_ms: grant,
                lease_ttl_ms: lease,
                liveness_timeout_ms: live,
                max_losses: losses,
                retention_ms: retention,
                blacklist,
                default_cap: dcap,
                caps,
                weights,
                limits,
                max_stored_bytes: stored,
                rates,
            }
        },
    )
}

pub(super) fn task_draw() -> impl Strategy<Value = TaskDraw> {
    let group = prop_oneof![
        Just(Group::AllOf),
        Just(Group::AnyOf),
        u32_in(1..2, 12).prop_map(Group::Quorum),
    ];
    let shape = (
        len(),
        prop_oneof![4 => Just(0u8), 1 => 0u8..8],
        proptest::collection::vec(any::<u8>(), 0..3),
        group,
        any::<bool>(),
    );
    // The reported panic lived here: edges as often as ordinary values, and one time
    // in four base and cap at the same edge with full jitter. The cap is mostly at or
    // above the base, which validation requires.
    let independent = (
        u64_in(0..2_000, 1),
        u64_in(2_000..10_000, 1),
        proptest::bool::weighted(0.95),
        jitter(),
    )
        .prop_map(|(base, max, ordered, jitter)| {
            let (base, max) = match ordered && max.get() < base.get() {
                true => (max, base),
                false => (base, max),
            };
            (base, max, jitter)
        });
    let same_edge = u64_edges().prop_map(|edge| (edge, edge, 100u8));
    let backoff = prop_oneof![3 => independent, 1 => same_edge];
    let retry = (u32_pos(1..4), backoff, u32_pos(1..4));
    let timing = (
        proptest::option::weighted(0.4, u64_pos(1..3_000)),
        u64_in(0..1_000, 6),
        proptest::option::of(i32_any()),
        any::<bool>(),
        proptest::option::of(u64_in(0..10_000, 2)),
        proptest::option::weighted(0.3, 0u8..2),
        proptest::option::weighted(0.3, u32_pos(1..4)),
    );
    (shape, retry, timing).prop_map(
        |(
            (payload, caps, deps, group, cancel),
            (max_attempts, (base, max, jitter_pct), factor),
            (attempt_timeout_ms, delay_ms, priority, allow_failure, estimated_ms, rate_key, stream),
        )| TaskDraw {
            payload,
            caps: caps & 0x07,
            deps,
            group,
            cancel_on_unsatisfied: cancel,
            max_attempts,
            backoff_base_ms: base,
            backoff_factor: factor,
            backoff_max_ms: max,
            jitter_pct,
            attempt_timeout_ms,
            delay_ms,
            priority,
            allow_failure,
            estimated_ms,
            rate_key,
            stream,
        },
    )
}

pub(super) fn job_draw() -> impl Strategy<Value = JobDraw> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        i32_any(),
        proptest::option::weighted(0.4, u64_pos(1..20_000)),
        proptest::option::weighted(0.3, u32_pos(1..4)),
        proptest::collection::vec(task_draw(), 1..5),
    )
        .prop_map(
            |(name, tenant, lane, priority, deadline_ms, max_concurrency, tasks)| JobDraw {
                name,
                tenant,
                lane,
                priority,
                deadline_ms,
                max_concurrency,
                tasks,
            },
        )
}

pub(super) fn register() -> impl Strategy<Value = Step> {
    (
        0u8..4,
        proptest::option::weighted(0.2, u64_in(1..5, 2)),
        any::<u8>(),
        prop_oneof![3 => Just(0u8), 1 => 0u8..8],
        u32_in(1..4, 6),
    )
        .prop_map(
            |(worker, instance, caps, lanes, max_concurrency)| Step::Register {
                worker,
                instance,
                caps: caps & 0x07,
                lanes,
                max_concurrency,
            },
        )
}

pub(super) fn then() -> impl Strategy<Value = Then> {
    prop_oneof![
        2 => Just(Then::Hold),
        3 => len().prop_map(Then::Complete),
        4 => (proptest::bool::weighted(0.2), len())
            .prop_map(|(permanent, error)| Then::Fail { permanent, error }),
        1 => (proptest::option::of(u64_in(0..3_000, 2)), any::<bool>())
            .prop_map(|(timeout_ms, resume)| Then::Suspend { timeout_ms, resume }),
        2 => (0u8..2, 2u8..4, u64_in(0..50, 4))
            .prop_map(|(budget, dimension, amount)| Then::Report { budget, dimension, amount }),
    ]
}

pub(super) fn step() -> impl Strategy<Value = Step> {
    let w = 0u8..4;
    // Mostly the newest lease, sometimes an older (often stale) one.
    let lease = prop_oneof![6 => Just(0u8), 1 => 1u8..4];
    prop_oneof![
        4 => register(),
        3 => w.clone().prop_map(|worker| Step::Heartbeat { worker }),
        2 => (w.clone(), u32_in(1..4, 3)).prop_map(|(worker, credits)| Step::RequestWork { worker, credits }),
        12 => (w.clone(), then()).prop_map(|(worker, then)| Step::Take { worker, then }),
        2 => (0u8..2).prop_map(|grant| Step::Accept { grant }),
        1 => (0u8..3).prop_map(|grant| Step::Release { grant }),
        2 => lease.clone().prop_map(|lease| Step::Renew { lease }),
        4 => (lease.clone(), len()).prop_map(|(lease, output)| Step::Complete { lease, output }),
        4 => (lease.clone(), any::<bool>(), len())
            .prop_map(|(lease, permanent, error)| Step::Fail { lease, permanent, error }),
        3 => (lease.clone(), u64_in(0..4, 3), proptest::collection::vec(len(), 0..4))
            .prop_map(|(lease, from, frames)| Step::Emit { lease, from, frames }),
        1 => (lease.clone(), 0u8..6, u64_in(0..8, 3))
            .prop_map(|(lease, from, cursor)| Step::Ack { lease, from, cursor }),
        1 => (lease.clone(), 0u8..6, proptest::option::of(u64_in(0..8, 3)), u32_in(0..16, 3))
            .prop_map(|(lease, from, cursor, limit)| Step::ReadEdge { lease, from, cursor, limit }),
        2 => (lease, proptest::option::of(u64_in(0..3_000, 2)), any::<bool>())
            .prop_map(|(lease, timeout_ms, resume)| Step::Suspend { lease, timeout_ms, resume }),
        2 => (prop_oneof![3 => Just(0u8), 1 => 1u8..3], any::<u8>(), len())
            .prop_map(|(task, key, payload)| Step::Signal { task, key, payload }),
        10 => job_draw().prop_map(Step::Submit),
        1 => (0u8..4).prop_map(|job| Step::Cancel { job }),
        1 => w.clone().prop_map(|worker| Step::Drain { worker }),
        1 => w.prop_map(|worker| Step::Deregister { worker }),
        4 => u64_in(0..1_000, 4).prop_map(|ms| Step::Advance { ms }),
        2 => prop_oneof![
            1 => (0u64..10_000).prop_map(U64::Any),
            1 => u64_edges(),
        ].prop_map(|at| Step::SetClock { at }),
        1 => Just(Step::Restart),
        1 => (u32_in(0..4_096, 4), any::<u8>()).prop_map(|(at, byte)| Step::Corrupt { at, byte }),
        2 => add_schedule(),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(name, change)| Step::ChangeSchedule { name, change }),
        // Mostly both of the names reports use, sometimes one.
        5 => (job_draw(), budget_draw(0.03), proptest::option::weighted(0.8, budget_draw(0.03)))
            .prop_map(|(job, first, second)| {
                let budgets = std::iter::once((0u8, first)).chain(second.map(|b| (1u8, b))).collect();
                Step::SubmitBudgeted { job, budgets }
            }),
        // Mostly a reported dimension of a declared budget, sometimes anything.
        5 => (
            prop_oneof![6 => Just(0u8), 1 => 1u8..4],
            prop_oneof![4 => 0u8..2, 1 => Just(2u8)],
            prop_oneof![6 => 2u8..4, 1 => 0u8..5],
            u64_in(0..50, 4),
            0u8..6,
        )
            .prop_map(|(lease, budget, dimension, amount, key)| {
                Step::ReportUsage { lease, budget, dimension, amount, key }
            }),
        1 => proptest::collection::vec((0u8..5, 0u8..3, budget_draw(0.6)), 1..3)
            .prop_map(|budgets| Step::TenantBudgets { budgets }),
        2 => (job_draw(), proptest::collection::vec(edge_draw(), 1..4))
            .prop_map(|(job, edges)| Step::SubmitStreaming { job, edges }),
    ]
}

/// A streaming edge, mostly from an earlier task to a later one, of any policy, with
/// a capacity from the edges of its range as often as a small one.
pub(super) fn edge_draw() -> impl Strategy<Value = EdgeDraw> {
    (0u8..6, 0u8..6, 0u8..4, u32_in(1..8, 3), 0u8..3).prop_map(
        |(consumer, producer, policy, capacity, on_full)| EdgeDraw {
            consumer: consumer.max(producer.saturating_add(1)),
            producer,
            policy,
            capacity,
            on_full,
        },
    )
}

/// A budget with small limits (so short runs reach them), each sometimes at an edge
/// or missing, either hard-limit policy, and a reset period with probability `reset`
/// (job budgets may not reset: a few draws check they are refused).
pub(super) fn budget_draw(reset: f64) -> impl Strategy<Value = BudgetDraw> {
    // Soft at or below hard nine times in ten, as validation requires.
    let limit = (
        prop_oneof![1 => 0u8..2, 2 => 2u8..4],
        proptest::option::weighted(0.5, u64_in(1..8, 12)),
        proptest::option::weighted(0.95, u64_in(1..8, 12)),
        proptest::bool::weighted(0.9),
    )
        .prop_map(|(dim, soft, hard, ordered)| match (soft, hard) {
            (Some(s), Some(h)) if ordered && s.get() > h.get() => (dim, Some(h), Some(s)),
            _ => (dim, soft, hard),
        });
    (
        proptest::collection::vec(limit, 1..4),
        any::<bool>(),
        proptest::option::weighted(reset, u64_in(1_000..20_000, 4)),
    )
        .prop_map(|(limits, revoke, reset_ms)| BudgetDraw {
            limits,
            revoke,
            reset_ms,
        })
}

pub(super) fn add_schedule() -> impl Strategy<Value = Step> {
    (
        (any::<u8>(), job_draw(), u64_in(1_000..20_000, 3)),
        proptest::option::weighted(0.4, any::<u8>()),
        (
            any::<u8>(),
            any::<u8>(),
            u32_in(1..5, 3),
            u64_in(1_000..5_000, 3),
        ),
    )
        .prop_map(
            |((name, job, every), cron, (overlap, misfire, catch_up, grace_ms))| {
                Step::AddSchedule {
                    name,
                    job,
                    every,
                    cron,
                    overlap,
                    misfire,
                    catch_up,
                    grace_ms,
                }
            },
        )
}

/// Every worker registers first with ordinary settings, so most steps reach a live
/// worker; later registrations draw from the edges.
pub(super) fn case() -> impl Strategy<Value = Case> {
    (config_draw(), proptest::collection::vec(step(), 1..120)).prop_map(|(config, rest)| {
        let mut steps: Vec<Step> = (0..4)
            .map(|worker| Step::Register {
                worker,
                instance: Some(U64::One),
                caps: worker & 0x07,
                lanes: 0x07,
                max_concurrency: U32::Two,
            })
            .collect();
        steps.extend(rest);
        Case { config, steps }
    })
}
