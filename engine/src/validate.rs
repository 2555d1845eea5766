//! Admission checks for job specs and capability tokens. Pure functions, shared by the
//! engine and by anything that wants to report errors before submitting (the planner).

use crate::config::Limits;
use crate::key_index::KeyIndex;
use crate::reject::{CapabilityIssue, JobError};
use crate::spec::{DepGroup, GroupKind, JobSpec};
use std::collections::{BTreeSet, VecDeque};

/// A spec that passed validation, with its dependency structure resolved to indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidJob {
    /// Upstream task indices for each task, in spec order of the group.
    pub upstream: Vec<Vec<u32>>,
    /// Downstream task indices for each task, ascending.
    pub downstream: Vec<Vec<u32>>,
    /// For each task, the indices of the tasks whose streams it reads, in spec order.
    pub producers: Vec<Vec<u32>>,
    /// A topological order: ready tasks by ascending spec index (Kahn's algorithm).
    pub topo_order: Vec<u32>,
    /// Length of the longest dependency chain ending at each task (roots are 1).
    pub depth: Vec<u32>,
    /// Indices of the tasks whose outputs are the job's result, ascending: those the
    /// spec names, else the sinks.
    pub result: Vec<u32>,
}

/// Checks a capability token: non-empty, bounded, no whitespace or control characters.
pub fn check_token(token: &str, max_len: u32) -> Result<(), CapabilityIssue> {
    if token.is_empty() {
        return Err(CapabilityIssue::Empty);
    }
    if token.len() > max_len as usize {
        return Err(CapabilityIssue::TooLong { limit: max_len });
    }
    if token.chars().any(char::is_control) {
        return Err(CapabilityIssue::Control);
    }
    if token.chars().any(char::is_whitespace) {
        return Err(CapabilityIssue::Whitespace);
    }
    Ok(())
}

/// Checks a list of tokens and that none repeats; returns the offending token.
pub fn check_tokens(tokens: &[String], max_len: u32) -> Result<(), (String, CapabilityIssue)> {
    let mut seen = BTreeSet::new();
    for t in tokens {
        check_token(t, max_len).map_err(|why| (t.clone(), why))?;
        if !seen.insert(t.as_str()) {
            return Err((t.clone(), CapabilityIssue::Duplicate));
        }
    }
    Ok(())
}

/// Checks a name (job name, tenant, lane, worker id, waitpoint): non-empty, bounded, and
/// free of control characters so it prints safely in logs and tables.
pub fn check_name(field: &'static str, value: &str, max_len: u32) -> Result<(), JobError> {
    let why = if value.is_empty() {
        "empty".to_string()
    } else if value.len() > max_len as usize {
        format!("longer than {max_len} bytes")
    } else if value.chars().any(char::is_control) {
        "contains a control character".to_string()
    } else {
        return Ok(());
    };
    Err(JobError::BadName {
        field: field.to_string(),
        why,
    })
}

/// `check_name` for names that arrive in commands rather than in a job spec.
pub(crate) fn check_command_name(
    field: &'static str,
    value: &str,
    max_len: u32,
) -> Result<(), crate::reject::Rejection> {
    check_name(field, value, max_len).map_err(|e| match e {
        JobError::BadName { field, why } => crate::reject::Rejection::InvalidName { field, why },
        other => crate::reject::Rejection::InvalidName {
            field: field.to_string(),
            why: other.to_string(),
        },
    })
}

/// Checks a spec against every rule and limit before anything is stored, and returns
/// it with its dependency graph resolved to task indices (what submission inserts).
pub fn validate_job(spec: &JobSpec, limits: &Limits) -> Result<ValidJob, JobError> {
    check_job_fields(spec, limits)?;
    let n = spec.tasks.len();
    let index = KeyIndex::new(spec)?;
    let mut upstream = Vec::with_capacity(n);
    let mut producers = Vec::with_capacity(n);
    for t in &spec.tasks {
        check_task_fields(t, limits)?;
        let ups = match &t.deps {
            Some(group) => group_upstream(t, group, &index, limits)?,
            None => Vec::new(),
        };
        producers.push(crate::edge_validate::producers(
            spec, t, &ups, &index, limits,
        )?);
        upstream.push(ups);
    }
    let downstream = reverse(&upstream);
    // Order and cycles count streaming edges too: a consumer waits for its producer to
    // start as surely as for an upstream task to end.
    let before: Vec<Vec<u32>> = upstream
        .iter()
        .zip(&producers)
        .map(|(u, p)| u.iter().chain(p).copied().collect())
        .collect();
    let after = reverse(&before);
    let (topo_order, depth) = topo_sort(&before, &after);
    if topo_order.len() < n {
        return Err(JobError::Cycle {
            cycle: find_cycle(spec, &before, &topo_order),
        });
    }
    if let Some((i, &d)) = depth
        .iter()
        .enumerate()
        .find(|(_, &d)| d > limits.max_dag_depth)
    {
        return Err(JobError::TooDeep {
            task: spec.tasks[i].key.clone(),
            depth: d,
            limit: limits.max_dag_depth,
        });
    }
    crate::edge_validate::check_reachable(spec, &upstream, &producers)?;
    let result = result_tasks(spec, &index, &after)?;
    Ok(ValidJob {
        upstream,
        downstream,
        producers,
        topo_order,
        depth,
        result,
    })
}

/// The result tasks' indices, ascending: each named key must be a task of the job and
/// appear once; when none is named, the tasks nothing depends on or streams from.
fn result_tasks(
    spec: &JobSpec,
    index: &KeyIndex,
    downstream: &[Vec<u32>],
) -> Result<Vec<u32>, JobError> {
    if spec.result.is_empty() {
        let sinks = downstream.iter().enumerate().filter(|(_, d)| d.is_empty());
        return Ok(sinks.map(|(i, _)| i as u32).collect());
    }
    let mut seen = BTreeSet::new();
    for key in &spec.result {
        let Some(i) = index.get(key) else {
            return Err(JobError::UnknownResultTask { key: key.clone() });
        };
        if !seen.insert(i) {
            return Err(JobError::DuplicateResultTask { key: key.clone() });
        }
    }
    Ok(seen.into_iter().collect())
}

/// The job's budgets: few enough, each well formed, none resetting.
fn check_budgets(spec: &JobSpec) -> Result<(), JobError> {
    use crate::budget_spec::MAX_BUDGETS_PER_JOB;
    if spec.budgets.len() > MAX_BUDGETS_PER_JOB {
        return Err(JobError::InvalidBudget(format!(
            "{} budgets, at most {MAX_BUDGETS_PER_JOB}",
            spec.budgets.len()
        )));
    }
    for (name, b) in &spec.budgets {
        b.check(name, false).map_err(JobError::InvalidBudget)?;
    }
    Ok(())
}

/// The job's own names and fields, its size, and its task keys, before any task is
/// looked at more closely.
fn check_job_fields(spec: &JobSpec, limits: &Limits) -> Result<(), JobError> {
    check_name("job name", &spec.name, limits.max_name_len)?;
    check_name("tenant", &spec.tenant, limits.max_name_len)?;
    check_name("lane", &spec.lane, limits.max_name_len)?;
    let positive = |task: Option<&str>, field: &str, value: Option<u64>| match value {
        Some(0) => Err(JobError::BadField {
            task: task.map(str::to_string),
            field: field.to_string(),
            why: "must be at least 1".to_string(),
        }),
        _ => Ok(()),
    };
    positive(None, "max_concurrency", spec.max_concurrency.map(u64::from))?;
    check_budgets(spec)?;
    positive(None, "deadline_ms", spec.deadline_ms)?;
    for t in &spec.tasks {
        positive(Some(&t.key), "attempt_timeout_ms", t.attempt_timeout_ms)?;
        if let crate::spec::StreamMode::Bounded { frames } = t.stream {
            positive(Some(&t.key), "stream.frames", Some(u64::from(frames)))?;
        }
    }
    let n = spec.tasks.len();
    if n == 0 {
        return Err(JobError::Empty);
    }
    if n as u64 > limits.max_tasks_per_job as u64 {
        return Err(JobError::TooManyTasks {
            count: n as u64,
            limit: limits.max_tasks_per_job,
        });
    }
    for t in &spec.tasks {
        check_name("task key", &t.key, limits.max_name_len)?;
        if let Some(key) = &t.rate_key {
            check_name("rate key", key, limits.max_name_len)?;
        }
    }
    Ok(())
}

/// The indexes of a task's upstream tasks, once its group is within the limits, not
/// empty, has a reachable quorum and names each known task once.
fn group_upstream(
    t: &crate::spec::TaskSpec,
    group: &DepGroup,
    index: &KeyIndex,
    limits: &Limits,
) -> Result<Vec<u32>, JobError> {
    let count = group.upstream.len();
    if count as u64 > limits.max_deps_per_task as u64 {
        return Err(JobError::TooManyDependencies {
            task: t.key.clone(),
            count: count as u64,
            limit: limits.max_deps_per_task,
        });
    }
    if count == 0 {
        return Err(JobError::EmptyGroup {
            task: t.key.clone(),
        });
    }
    if let GroupKind::Quorum(k) = group.kind {
        if k == 0 || k as usize > count {
            return Err(JobError::QuorumOutOfRange {
                task: t.key.clone(),
                k,
                n: count as u32,
            });
        }
    }
    let mut seen = BTreeSet::new();
    let mut ups = Vec::with_capacity(count);
    for dep in &group.upstream {
        let Some(j) = index.get(dep) else {
            return Err(JobError::UnknownDependency {
                task: t.key.clone(),
                dep: dep.clone(),
            });
        };
        if !seen.insert(j) {
            return Err(JobError::DuplicateDependency {
                task: t.key.clone(),
                dep: dep.clone(),
            });
        }
        ups.push(j);
    }
    Ok(ups)
}

fn check_task_fields(t: &crate::spec::TaskSpec, limits: &Limits) -> Result<(), JobError> {
    if t.payload.len() as u64 > limits.max_payload_bytes as u64 {
        return Err(JobError::PayloadTooLarge {
            task: t.key.clone(),
            bytes: t.payload.len() as u64,
            limit: limits.max_payload_bytes,
        });
    }
    if t.capabilities.len() as u64 > limits.max_caps_per_task as u64 {
        return Err(JobError::TooManyCapabilities {
            task: t.key.clone(),
            count: t.capabilities.len() as u64,
            limit: limits.max_caps_per_task,
        });
    }
    check_tokens(&t.capabilities, limits.max_cap_token_len).map_err(|(token, why)| {
        JobError::Capability {
            task: t.key.clone(),
            token,
            why,
        }
    })?;
    let r = &t.retry;
    let bad = if r.max_attempts == 0 {
        Some("max_attempts must be at least 1")
    } else if r.backoff_factor == 0 {
        Some("backoff_factor must be at least 1")
    } else if r.jitter_pct > 100 {
        Some("jitter_pct must be at most 100")
    } else if r.backoff_max_ms < r.backoff_base_ms {
        Some("backoff_max_ms must be at least backoff_base_ms")
    } else {
        None
    };
    match bad {
        Some(why) => Err(JobError::BadRetry {
            task: t.key.clone(),
            why: why.to_string(),
        }),
        None => Ok(()),
    }
}

/// The edges of `upstream` turned around, each list ascending.
pub(crate) fn reverse(upstream: &[Vec<u32>]) -> Vec<Vec<u32>> {
    let mut downstream = vec![Vec::new(); upstream.len()];
    for (i, ups) in upstream.iter().enumerate() {
        for &u in ups {
            downstream[u as usize].push(i as u32);
        }
    }
    downstream
}

/// Kahn's algorithm with ready tasks taken in ascending index order.
fn topo_sort(upstream: &[Vec<u32>], downstream: &[Vec<u32>]) -> (Vec<u32>, Vec<u32>) {
    let n = upstream.len();
    let mut indegree: Vec<u32> = upstream.iter().map(|u| u.len() as u32).collect();
    let mut depth = vec![1u32; n];
    let mut queue: VecDeque<u32> = (0..n as u32)
        .filter(|&i| indegree[i as usize] == 0)
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = queue.pop_front() {
        order.push(i);
        for &d in &downstream[i as usize] {
            let d = d as usize;
            depth[d] = depth[d].max(depth[i as usize] + 1);
            indegree[d] -= 1;
            if indegree[d] == 0 {
                queue.push_back(d as u32);
            }
        }
    }
    (order, depth)
}

/// Every task left out of a topological order lies on or behind a cycle, so following
/// unsorted upstream edges from one must revisit a task. Returns the cycle in
/// execution direction (upstream first), closed by repeating its first key.
fn find_cycle(spec: &JobSpec, upstream: &[Vec<u32>], sorted: &[u32]) -> Vec<String> {
    let n = upstream.len();
    let mut done = vec![false; n];
    for &i in sorted {
        done[i as usize] = true;
    }
    let Some(start) = (0..n).find(|&i| !done[i]) else {
        return Vec::new();
    };
    let mut pos_in_path = vec![usize::MAX; n];
    let mut path = Vec::new();
    let mut cur = start;
    while pos_in_path[cur] == usize::MAX {
        pos_in_path[cur] = path.len();
        path.push(cur);
        cur = upstream[cur]
            .iter()
            .map(|&u| u as usize)
            .find(|&u| !done[u])
            .unwrap_or(cur);
    }
    let mut cycle: Vec<String> = path[pos_in_path[cur]..]
        .iter()
        .rev()
        .map(|&i| spec.tasks[i].key.clone())
        .collect();
    cycle.push(cycle[0].clone());
    cycle
}
