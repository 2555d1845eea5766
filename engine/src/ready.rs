//! The ready index: ready tasks grouped by (lane, tenant, capability set, rate key), each group
//! ordered by priority then submission order. Dispatch looks only at group heads, so
//! a grant costs O(groups in the lane + log n) however many tasks are queued.

use crate::ids::TaskId;
use crate::intern::CapSetId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Lower sorts first: higher priority, then older task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct ReadyKey {
    pub rank: i64,
    pub task: TaskId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct QueueKey {
    pub lane: u32,
    pub tenant: u32,
    pub capset: CapSetId,
    /// Interned rate key, so a task whose key is throttled does not hold back tasks
    /// with another key (or none) behind it.
    pub rate: Option<u32>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct ReadyIndex {
    queues: BTreeMap<QueueKey, BTreeSet<ReadyKey>>,
    len: u64,
}

impl ReadyIndex {
    pub(crate) fn insert(&mut self, q: QueueKey, key: ReadyKey) {
        if self.queues.entry(q).or_default().insert(key) {
            self.len += 1;
        }
    }

    pub(crate) fn remove(&mut self, q: QueueKey, key: ReadyKey) -> bool {
        let Some(set) = self.queues.get_mut(&q) else {
            return false;
        };
        let removed = set.remove(&key);
        if set.is_empty() {
            self.queues.remove(&q);
        }
        if removed {
            self.len -= 1;
        }
        removed
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Queued tasks per interned lane, ascending by lane id.
    pub(crate) fn per_lane(&self) -> Vec<(u32, u64)> {
        let mut out: Vec<(u32, u64)> = Vec::new();
        for (q, set) in &self.queues {
            match out.last_mut() {
                Some((lane, n)) if *lane == q.lane => *n += set.len() as u64,
                _ => out.push((q.lane, set.len() as u64)),
            }
        }
        out
    }

    /// The first lane at or after `lane` (by id) with ready tasks.
    pub(crate) fn lane_from(&self, lane: u32) -> Option<u32> {
        let lo = QueueKey {
            lane,
            tenant: 0,
            capset: CapSetId(0),
            rate: None,
        };
        self.queues.range(lo..).next().map(|(q, _)| q.lane)
    }

    /// Non-empty queues of one lane with their head, in (tenant, capset) order.
    pub(crate) fn heads(&self, lane: u32) -> impl Iterator<Item = (QueueKey, ReadyKey)> + '_ {
        let lo = QueueKey {
            lane,
            tenant: 0,
            capset: CapSetId(0),
            rate: None,
        };
        let hi = QueueKey {
            lane,
            tenant: u32::MAX,
            capset: CapSetId(u32::MAX),
            rate: Some(u32::MAX),
        };
        self.queues
            .range(lo..=hi)
            .filter_map(|(q, set)| set.first().map(|k| (*q, *k)))
    }

    /// Removes and returns every queued task with this capability requirement.
    pub(crate) fn take_capset(&mut self, capset: CapSetId) -> Vec<(QueueKey, ReadyKey)> {
        let keys: Vec<QueueKey> = self
            .queues
            .keys()
            .filter(|q| q.capset == capset)
            .copied()
            .collect();
        let mut out = Vec::new();
        for q in keys {
            if let Some(set) = self.queues.remove(&q) {
                self.len -= set.len() as u64;
                out.extend(set.into_iter().map(|k| (q, k)));
            }
        }
        out
    }

    /// Each non-empty queue and how many tasks wait in it.
    pub(crate) fn queue_sizes(&self) -> impl Iterator<Item = (QueueKey, u64)> + '_ {
        self.queues.iter().map(|(q, set)| (*q, set.len() as u64))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (QueueKey, ReadyKey)> + '_ {
        self.queues
            .iter()
            .flat_map(|(q, set)| set.iter().map(move |k| (*q, *k)))
    }
}
