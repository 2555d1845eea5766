//! Why a task is not running, in words, from the coordinator's list of workers: no live
//! worker serves its lane, none has a capability it needs, the ones that could are
//! blacklisted or busy. `keel status` shows it beside queued and blocked tasks, and
//! `keel submit` warns with it when a job arrives that nothing can run yet.

use crate::clock;
use keel_engine::ALL_LANES;
use keel_grpc::proto::{JobSpec, WorkerInfo};
use keel_jobs::terminal_safe;
use std::collections::BTreeMap;

/// Workers that may be granted tasks: registered and neither draining nor lost.
/// Blacklisted workers count: their blacklist ends by itself.
fn live(workers: &[WorkerInfo]) -> impl Iterator<Item = &WorkerInfo> {
    workers
        .iter()
        .filter(|w| w.status == "active" || w.status == "blacklisted")
}

pub fn serves(worker: &WorkerInfo, lane: &str) -> bool {
    worker.lanes.iter().any(|l| l == lane || l == ALL_LANES)
}

fn has_all(worker: &WorkerInfo, caps: &[String]) -> bool {
    caps.iter().all(|c| worker.capabilities.contains(c))
}

fn quoted(items: &[&String]) -> String {
    items
        .iter()
        .map(|c| format!("\"{}\"", terminal_safe(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why no live worker can take a task of `lane` needing `caps`, or `None` if one can.
pub fn no_worker(lane: &str, caps: &[String], workers: &[WorkerInfo]) -> Option<String> {
    if live(workers).next().is_none() {
        return Some("no live worker is connected".to_string());
    }
    let serving: Vec<&WorkerInfo> = live(workers).filter(|w| serves(w, lane)).collect();
    if serving.is_empty() {
        return Some(format!(
            "no live worker serves lane \"{}\"",
            terminal_safe(lane)
        ));
    }
    if serving.iter().any(|w| has_all(w, caps)) {
        return None;
    }
    let missing: Vec<&String> = caps
        .iter()
        .filter(|c| !serving.iter().any(|w| w.capabilities.contains(c)))
        .collect();
    let anywhere = |c: &&String| live(workers).any(|w| w.capabilities.contains(c));
    let (word, list) = match missing.as_slice() {
        [] => {
            return Some(format!(
                "no live worker serving lane \"{}\" has all of {}",
                terminal_safe(lane),
                quoted(&caps.iter().collect::<Vec<_>>())
            ))
        }
        [_] => ("capability", quoted(&missing)),
        _ => ("capabilities", quoted(&missing)),
    };
    Some(if missing.iter().any(anywhere) {
        format!(
            "no live worker serving lane \"{}\" has {word} {list}",
            terminal_safe(lane)
        )
    } else {
        format!("no live worker has {word} {list}")
    })
}

/// Why a ready task still waits: nobody can run it, or everyone who can is blacklisted
/// or has no free slot. `None` when a worker could take it now.
pub fn queued(lane: &str, caps: &[String], workers: &[WorkerInfo], now: u64) -> Option<String> {
    if let Some(why) = no_worker(lane, caps, workers) {
        return Some(why);
    }
    let able: Vec<&WorkerInfo> = live(workers)
        .filter(|w| serves(w, lane) && has_all(w, caps))
        .collect();
    let admitted: Vec<&&WorkerInfo> = able.iter().filter(|w| w.status == "active").collect();
    if admitted.is_empty() {
        let until = able.iter().filter_map(|w| w.blacklisted_until_ms).min();
        let when = until.map_or_else(String::new, |t| format!(" until {}", clock::stamp(t, now)));
        return Some(format!("every worker that can run it is blacklisted{when}"));
    }
    let busy = |w: &&&WorkerInfo| {
        w.leases.len() as u64 + u64::from(w.grants) >= u64::from(w.max_concurrency)
    };
    if admitted.iter().all(busy) {
        let slots: u64 = admitted.iter().map(|w| u64::from(w.max_concurrency)).sum();
        return Some(format!(
            "waiting for a free slot: the {} worker(s) that can run it have all {slots} busy",
            admitted.len()
        ));
    }
    None
}

/// Warnings for a job just submitted: its lane has no live worker, or some of its
/// tasks need capabilities no live worker serving the lane has (naming up to three of
/// those tasks per capability set).
pub fn submit_warnings(spec: &JobSpec, workers: &[WorkerInfo]) -> Vec<String> {
    let lane = if spec.lane.is_empty() {
        "default"
    } else {
        &spec.lane
    };
    let mut by_caps: BTreeMap<Vec<String>, Vec<&str>> = BTreeMap::new();
    for t in &spec.tasks {
        let mut caps = t.capabilities.clone();
        caps.sort();
        by_caps.entry(caps).or_default().push(&t.key);
    }
    if let Some(why) = no_worker(lane, &[], workers) {
        return vec![format!("{why}: the job waits until one does")];
    }
    by_caps
        .iter()
        .filter_map(|(caps, keys)| {
            let why = no_worker(lane, caps, workers)?;
            let shown: Vec<String> = keys
                .iter()
                .take(3)
                .map(|k| format!("\"{}\"", terminal_safe(k)))
                .collect();
            let more = match keys.len() {
                n if n > 3 => format!(" and {} more", n - 3),
                _ => String::new(),
            };
            Some(format!(
                "{why}: task {}{more} waits until one does",
                shown.join(", ")
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_grpc::proto::{LeaseInfo, TaskSpec};

    fn worker(id: &str, lanes: &[&str], caps: &[&str]) -> WorkerInfo {
        WorkerInfo {
            id: id.into(),
            lanes: lanes.iter().map(|l| l.to_string()).collect(),
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            status: "active".into(),
            max_concurrency: 1,
            ..Default::default()
        }
    }

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn lanes_and_capabilities_are_named() {
        let ws = [
            worker("a", &["default"], &["cpu"]),
            worker("b", &["batch"], &["gpu"]),
        ];
        assert_eq!(no_worker("default", &caps(&["cpu"]), &ws), None);
        assert_eq!(
            no_worker("etl", &[], &ws).as_deref(),
            Some("no live worker serves lane \"etl\"")
        );
        assert_eq!(
            no_worker("default", &caps(&["tpu"]), &ws).as_deref(),
            Some("no live worker has capability \"tpu\"")
        );
        assert_eq!(
            no_worker("default", &caps(&["gpu"]), &ws).as_deref(),
            Some("no live worker serving lane \"default\" has capability \"gpu\"")
        );
        let split = [worker("a", &["*"], &["x"]), worker("b", &["*"], &["y"])];
        assert_eq!(
            no_worker("any", &caps(&["x", "y"]), &split).as_deref(),
            Some("no live worker serving lane \"any\" has all of \"x\", \"y\"")
        );
        assert_eq!(
            no_worker("default", &[], &[]).as_deref(),
            Some("no live worker is connected")
        );
    }

    #[test]
    fn draining_and_lost_workers_do_not_count() {
        let mut w = worker("a", &["default"], &[]);
        w.status = "draining".into();
        let mut l = worker("b", &["default"], &[]);
        l.status = "lost".into();
        assert!(no_worker("default", &[], &[w, l]).is_some());
    }

    #[test]
    fn blacklisted_and_busy_workers_are_explained() {
        let mut w = worker("a", &["default"], &[]);
        w.status = "blacklisted".into();
        w.blacklisted_until_ms = Some(u64::MAX);
        assert_eq!(
            queued("default", &[], &[w], 0).as_deref(),
            Some("every worker that can run it is blacklisted until forever")
        );
        let mut busy = worker("a", &["default"], &[]);
        busy.leases.push(LeaseInfo::default());
        assert!(queued("default", &[], &[busy.clone()], 0)
            .unwrap()
            .contains("have all 1 busy"));
        busy.max_concurrency = 2;
        assert_eq!(queued("default", &[], &[busy], 0), None);
    }

    #[test]
    fn submit_warns_per_capability_set_naming_tasks() {
        let task = |key: &str, c: &[&str]| TaskSpec {
            key: key.into(),
            capabilities: caps(c),
            ..Default::default()
        };
        let spec = JobSpec {
            lane: "gpu".into(),
            tasks: vec![
                task("prep", &[]),
                task("t1", &["cuda"]),
                task("t2", &["cuda"]),
                task("t3", &["cuda"]),
                task("t4", &["cuda"]),
            ],
            ..Default::default()
        };
        let ws = [worker("a", &["gpu"], &[])];
        assert_eq!(
            submit_warnings(&spec, &ws),
            vec!["no live worker has capability \"cuda\": task \"t1\", \"t2\", \"t3\" and 1 more waits until one does"]
        );
        assert_eq!(
            submit_warnings(&spec, &[worker("b", &["default"], &["cuda"])]),
            vec!["no live worker serves lane \"gpu\": the job waits until one does"]
        );
        assert!(submit_warnings(&spec, &[worker("c", &["*"], &["cuda"])]).is_empty());
    }

    #[test]
    fn hostile_names_are_escaped() {
        let why = no_worker("\u{1b}[2J", &[], &[worker("a", &["x"], &[])]).unwrap();
        assert!(!why.contains('\u{1b}'), "{why:?}");
    }
}
