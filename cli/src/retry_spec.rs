//! The job `keel retry` submits: the part of a finished job that did not succeed, with
//! its dependency structure, under a name that links it to the job it retries.
//!
//! The rule: every task that failed, was cancelled or was skipped is submitted again,
//! unchanged (payload, capabilities, retry policy, timeouts), in its original order.
//! A dependency on a task that succeeded is satisfied already, so it is dropped: an
//! all-of group keeps only its unfinished upstream tasks, an any-of group with a
//! succeeded upstream task goes away, and a quorum of k with s succeeded upstream tasks
//! becomes a quorum of k - s over the rest (none when s >= k). A task left with no
//! upstream task starts at once. The outputs of succeeded tasks are not passed on.

use keel_grpc::proto::dep_group::Kind;
use keel_grpc::proto::{DepGroup, JobSpec};
use std::collections::BTreeMap;

/// The longest job name the engine accepts by default.
const MAX_NAME: usize = 256;

/// Which retry of which job a name says it is: `<name>-retry-<n>-of-j<job>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryLink {
    /// 1 for a retry of an original job, one more for each retry of a retry.
    pub generation: u32,
    /// The job it retries.
    pub source: u64,
}

/// Splits `<base>-retry-<n>-of-j<job>` into its base and link.
fn split(name: &str) -> Option<(&str, RetryLink)> {
    let (rest, job) = name.rsplit_once("-of-j")?;
    let (base, generation) = rest.rsplit_once("-retry-")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(job) || !digits(generation) {
        return None;
    }
    let link = RetryLink {
        generation: generation.parse().ok()?,
        source: job.parse().ok()?,
    };
    Some((base, link))
}

/// The link a job's name carries, if it was named as a retry.
pub fn retry_link(name: &str) -> Option<RetryLink> {
    split(name).map(|(_, link)| link)
}

/// The name of a retry of job `source` named `name`: the same base, one generation
/// more, and the source's id. The same job always gets the same name, so retrying it
/// twice is answered with the first retry while that one is live or retained.
pub fn retry_name(name: &str, source: u64) -> String {
    let (base, generation) = match split(name) {
        Some((base, link)) => (base, link.generation.saturating_add(1)),
        None => (name, 1),
    };
    let suffix = format!("-retry-{generation}-of-j{source}");
    let mut cut = MAX_NAME.saturating_sub(suffix.len()).min(base.len());
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &base[..cut])
}

/// The retry of `spec` given each task's final state by key; an error when every task
/// succeeded.
pub fn retry_spec(
    spec: &JobSpec,
    states: &BTreeMap<String, String>,
    name: String,
) -> Result<JobSpec, String> {
    let succeeded = |key: &str| states.get(key).is_some_and(|s| s == "succeeded");
    let tasks: Vec<_> = spec
        .tasks
        .iter()
        .filter(|t| !succeeded(&t.key))
        .map(|t| {
            let mut task = t.clone();
            task.deps = t.deps.as_ref().and_then(|d| remaining_group(d, succeeded));
            task
        })
        .collect();
    if tasks.is_empty() {
        return Err("nothing to retry: every task succeeded".to_string());
    }
    Ok(JobSpec {
        name,
        tasks,
        ..spec.clone()
    })
}

/// A dependency group with its succeeded upstream tasks taken as satisfied; `None` when
/// they already satisfy it.
fn remaining_group(group: &DepGroup, succeeded: impl Fn(&str) -> bool) -> Option<DepGroup> {
    let (done, upstream): (Vec<&String>, Vec<&String>) =
        group.upstream.iter().partition(|k| succeeded(k));
    let done = u32::try_from(done.len()).unwrap_or(u32::MAX);
    let upstream: Vec<String> = upstream.into_iter().cloned().collect();
    if upstream.is_empty() {
        return None;
    }
    let (kind, quorum) = match Kind::try_from(group.kind).unwrap_or(Kind::AllOf) {
        Kind::AnyOf if done > 0 => return None,
        Kind::Quorum => match group.quorum.saturating_sub(done) {
            0 => return None,
            need => (Kind::Quorum, need),
        },
        Kind::AnyOf => (Kind::AnyOf, 0),
        Kind::AllOf | Kind::Unspecified => (Kind::AllOf, 0),
    };
    Some(DepGroup {
        kind: kind as i32,
        quorum,
        upstream,
        on_unsatisfied: group.on_unsatisfied,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_grpc::proto::TaskSpec;

    fn task(key: &str, kind: Kind, quorum: u32, upstream: &[&str]) -> TaskSpec {
        TaskSpec {
            key: key.into(),
            payload: key.as_bytes().to_vec(),
            deps: (!upstream.is_empty()).then(|| DepGroup {
                kind: kind as i32,
                quorum,
                upstream: upstream.iter().map(|u| u.to_string()).collect(),
                on_unsatisfied: 0,
            }),
            ..Default::default()
        }
    }

    fn states(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(k, s)| (k.to_string(), s.to_string()))
            .collect()
    }

    #[test]
    fn succeeded_tasks_are_left_out_and_their_edges_dropped() {
        let spec = JobSpec {
            name: "etl".into(),
            lane: "batch".into(),
            tasks: vec![
                task("extract", Kind::AllOf, 0, &[]),
                task("validate", Kind::AllOf, 0, &["extract"]),
                task("load", Kind::AllOf, 0, &["extract", "validate"]),
                task("report", Kind::AllOf, 0, &["load"]),
            ],
            ..Default::default()
        };
        let s = states(&[
            ("extract", "succeeded"),
            ("validate", "failed"),
            ("load", "skipped"),
            ("report", "skipped"),
        ]);
        let retry = retry_spec(&spec, &s, "etl-retry-1-of-j7".into()).unwrap();
        assert_eq!(retry.name, "etl-retry-1-of-j7");
        assert_eq!(retry.lane, "batch");
        let keys: Vec<&str> = retry.tasks.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["validate", "load", "report"]);
        assert!(retry.tasks[0].deps.is_none(), "validate starts at once");
        assert_eq!(retry.tasks[1].deps.as_ref().unwrap().upstream, ["validate"]);
        assert_eq!(retry.tasks[2].deps.as_ref().unwrap().upstream, ["load"]);
        assert_eq!(retry.tasks[0].payload, b"validate");
    }

    #[test]
    fn any_of_and_quorum_groups_count_what_succeeded() {
        let spec = JobSpec {
            tasks: vec![
                task("a", Kind::AllOf, 0, &[]),
                task("b", Kind::AllOf, 0, &[]),
                task("c", Kind::AllOf, 0, &[]),
                task("any", Kind::AnyOf, 0, &["a", "b"]),
                task("any2", Kind::AnyOf, 0, &["b", "c"]),
                task("q2", Kind::Quorum, 2, &["a", "b", "c"]),
                task("q1", Kind::Quorum, 1, &["a", "b", "c"]),
            ],
            ..Default::default()
        };
        let s = states(&[
            ("a", "succeeded"),
            ("b", "failed"),
            ("c", "cancelled"),
            ("any", "cancelled"),
            ("any2", "skipped"),
            ("q2", "skipped"),
            ("q1", "failed"),
        ]);
        let retry = retry_spec(&spec, &s, "r".into()).unwrap();
        let group = |key: &str| {
            let t = retry.tasks.iter().find(|t| t.key == key).unwrap();
            t.deps.as_ref().map(|d| {
                (
                    Kind::try_from(d.kind).unwrap(),
                    d.quorum,
                    d.upstream.clone(),
                )
            })
        };
        assert_eq!(group("any"), None, "a succeeded: the any-of is satisfied");
        assert_eq!(
            group("any2"),
            Some((Kind::AnyOf, 0, vec!["b".into(), "c".into()]))
        );
        assert_eq!(
            group("q2"),
            Some((Kind::Quorum, 1, vec!["b".into(), "c".into()]))
        );
        assert_eq!(group("q1"), None, "one success already met a quorum of 1");
    }

    #[test]
    fn a_job_that_fully_succeeded_has_nothing_to_retry() {
        let spec = JobSpec {
            tasks: vec![task("a", Kind::AllOf, 0, &[])],
            ..Default::default()
        };
        let e = retry_spec(&spec, &states(&[("a", "succeeded")]), "r".into()).unwrap_err();
        assert!(e.contains("nothing to retry"), "{e}");
    }

    #[test]
    fn retry_names_link_to_their_source_and_count_generations() {
        assert_eq!(retry_name("etl", 7), "etl-retry-1-of-j7");
        assert_eq!(retry_name("etl-retry-1-of-j7", 9), "etl-retry-2-of-j9");
        assert_eq!(
            retry_link("etl-retry-2-of-j9"),
            Some(RetryLink {
                generation: 2,
                source: 9
            })
        );
        assert_eq!(retry_link("etl"), None);
        assert_eq!(retry_link("my-retry-x-of-j7"), None);
        assert_eq!(retry_link("a-retry-1-of-j"), None);
        assert_eq!(retry_link("a-retry-1-of-j99999999999999999999999"), None);
        let long = "é".repeat(200);
        let name = retry_name(&long, u64::MAX);
        assert!(name.len() <= MAX_NAME, "{}", name.len());
        assert_eq!(retry_link(&name).unwrap().source, u64::MAX);
        let max_gen = retry_name(&format!("x-retry-{}-of-j1", u32::MAX), 2);
        assert_eq!(retry_link(&max_gen).unwrap().generation, u32::MAX);
    }
}
