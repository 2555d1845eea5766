//! Values by task id (the engine keeps its tasks here). Ids are handed out in
//! increasing order and never reused, and jobs are forgotten roughly in submission
//! order, so a deque indexed by `id - base` gives
//! constant-time lookups where an ordered map would search a tree on every command.
//! A task that outlives many younger ones keeps their slots (one word each) until it
//! is forgotten.

use crate::ids::TaskId;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Generic over what it holds, so the table knows ids and slots but nothing of a
/// task's state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Slab<T> {
    /// Id of the value in `slots[0]`.
    base: u64,
    /// Boxed so a forgotten value costs one word while older ones are still held.
    slots: VecDeque<Option<Box<T>>>,
    /// Tasks held (occupied slots).
    live: u64,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            base: 0,
            slots: VecDeque::new(),
            live: 0,
        }
    }
}

impl<T> Slab<T> {
    fn index(&self, id: TaskId) -> Option<usize> {
        id.0.checked_sub(self.base).map(|i| i as usize)
    }

    pub(crate) fn get(&self, id: &TaskId) -> Option<&T> {
        self.slots.get(self.index(*id)?)?.as_deref()
    }

    pub(crate) fn get_mut(&mut self, id: &TaskId) -> Option<&mut T> {
        let i = self.index(*id)?;
        self.slots.get_mut(i)?.as_deref_mut()
    }

    pub(crate) fn insert(&mut self, id: TaskId, task: T) {
        if self.slots.is_empty() {
            self.base = id.0;
        }
        // An id below the first slot (the engine never inserts one, but the table does
        // not rely on that) gets empty slots in front of the old first one.
        let gap = self.base.saturating_sub(id.0);
        self.base -= gap;
        for _ in 0..gap {
            self.slots.push_front(None);
        }
        let i = (id.0 - self.base) as usize;
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        if self.slots[i].replace(Box::new(task)).is_none() {
            self.live += 1;
        }
    }

    pub(crate) fn remove(&mut self, id: &TaskId) -> Option<T> {
        let i = self.index(*id)?;
        let task = self.slots.get_mut(i)?.take();
        if task.is_some() {
            assert!(self.live > 0, "a removed slot was counted live");
            self.live -= 1;
        }
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.base += 1;
        }
        // Empty slots at the back stay: ids only grow, so the next insert would put
        // them back, and trimming them on every removal made forgetting a job behind a
        // long-lived older task quadratic.
        task.map(|b| *b)
    }

    /// Tasks held.
    pub(crate) fn len(&self) -> u64 {
        self.live
    }

    /// One past the last slot's id, or `None` if that does not fit a `u64`; `base` when
    /// no slot is left. The engine inserts ids in increasing order, so a non-empty table
    /// ends at the next task id.
    pub(crate) fn end(&self) -> Option<u64> {
        self.base.checked_add(self.slots.len() as u64)
    }

    /// The ids the table has slots for, held or not (empty past `u64::MAX`).
    pub(crate) fn span(&self) -> std::ops::Range<u64> {
        self.base..self.end().unwrap_or(self.base)
    }

    /// Whether the table is empty of slots, held or not.
    pub(crate) fn no_slots(&self) -> bool {
        self.slots.is_empty()
    }

    /// Occupied slots, counted; a snapshot's `len` is checked against it.
    pub(crate) fn count(&self) -> u64 {
        self.slots.iter().filter(|t| t.is_some()).count() as u64
    }

    /// Moves the table to start at `base`, for tests of hostile snapshots.
    #[cfg(test)]
    pub(crate) fn rebase(&mut self, base: u64) {
        self.base = base;
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (TaskId, &T)> {
        let base = self.base;
        self.slots
            .iter()
            .enumerate()
            .filter_map(move |(i, t)| t.as_deref().map(|t| (TaskId(base + i as u64), t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(slab: &Slab<&str>) -> Vec<u64> {
        slab.iter().map(|(id, _)| id.0).collect()
    }

    #[test]
    fn the_first_insert_starts_the_table_at_its_id() {
        let mut slab = Slab::default();
        slab.insert(TaskId(5), "five");
        assert_eq!((slab.slots.len(), slab.end(), slab.len()), (1, Some(6), 1));
        assert_eq!(slab.get(&TaskId(5)), Some(&"five"));
        assert_eq!(slab.get(&TaskId(4)), None);
    }

    #[test]
    fn an_id_below_the_first_slot_gets_empty_slots_in_front() {
        let mut slab = Slab::default();
        slab.insert(TaskId(5), "five");
        slab.insert(TaskId(2), "two");
        assert_eq!((slab.slots.len(), slab.end(), slab.len()), (4, Some(6), 2));
        assert_eq!(ids(&slab), [2, 5]);
        assert_eq!(slab.get(&TaskId(2)), Some(&"two"));
        assert_eq!(slab.get(&TaskId(3)), None);
        assert_eq!(slab.get(&TaskId(5)), Some(&"five"));
        slab.insert(TaskId(7), "seven");
        assert_eq!(ids(&slab), [2, 5, 7]);
        assert_eq!(slab.remove(&TaskId(2)), Some("two"));
        assert_eq!(
            (slab.slots.len(), slab.count()),
            (3, 2),
            "empty front slots go"
        );
    }
}
