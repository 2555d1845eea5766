//! Small integer ids for lanes, tenants and capability sets, so the hot path compares
//! integers instead of strings. Capability sets also carry how many live workers can
//! serve them and which ready tasks wait for such a worker.
//!
//! Every id is held by what uses it: a tenant by the jobs the engine holds, a lane by
//! those jobs and by worker records, a capability set by the held tasks requiring it.
//! An id nobody holds is dropped and reused, so clients inventing names cannot grow
//! these tables past what the engine holds at once.

use crate::ids::TaskId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct CapSetId(pub u32);

impl CapSetId {
    /// The empty requirement: any worker serves it, so it is never blocked. It is held
    /// by nothing and never dropped.
    pub(crate) const ANY: CapSetId = CapSetId(0);
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct CapSet {
    /// Sorted and distinct; empty for a dropped set (and for `ANY`).
    pub caps: Vec<String>,
    /// Registered, non-draining workers advertising every capability in `caps`.
    pub coverage: u32,
    /// Ready tasks with this requirement while `coverage` is zero.
    pub blocked: BTreeSet<TaskId>,
    /// Held tasks requiring this set; the set is dropped when it reaches zero.
    pub refs: u64,
    /// Which interning of its id this set is, so an answer remembered for a dropped set
    /// is not taken for the set that reuses its id (see `CoverMemo`). Not stored: sets
    /// restored from a snapshot are all 0 and later ones count from 1.
    #[serde(skip)]
    pub born: u64,
}

/// Interned names with holder counts; a dropped id keeps an empty name (names are never
/// empty) until it is reused, lowest first.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct NameTable {
    ids: BTreeMap<String, u32>,
    names: Vec<String>,
    refs: Vec<u64>,
    free: BTreeSet<u32>,
}

impl NameTable {
    pub(crate) fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The name of a held id; empty for a dropped or unknown one.
    pub(crate) fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }

    /// Interns `name` (reusing a dropped id) and counts one more holder.
    pub(crate) fn acquire(&mut self, name: &str) -> u32 {
        let id = match self.ids.get(name) {
            Some(&id) => id,
            None => {
                let id = match self.free.pop_first() {
                    Some(id) => {
                        self.names[id as usize] = name.to_string();
                        id
                    }
                    None => {
                        self.names.push(name.to_string());
                        self.refs.push(0);
                        (self.names.len() - 1) as u32
                    }
                };
                self.ids.insert(name.to_string(), id);
                id
            }
        };
        self.refs[id as usize] += 1;
        id
    }

    /// One holder fewer; the name is dropped when none is left.
    pub(crate) fn release(&mut self, id: u32) {
        let refs = self
            .refs
            .get_mut(id as usize)
            .expect("a released name was interned");
        assert!(*refs > 0, "name {id} is released by one of its holders");
        *refs -= 1;
        if *refs > 0 || self.free.contains(&id) {
            return;
        }
        let name = std::mem::take(&mut self.names[id as usize]);
        self.ids.remove(&name);
        self.free.insert(id);
    }

    pub(crate) fn refs(&self, id: u32) -> u64 {
        self.refs.get(id as usize).copied().unwrap_or(0)
    }

    /// Names currently held.
    pub(crate) fn in_use(&self) -> usize {
        self.ids.len()
    }

    /// Ids handed out so far, held or dropped; every id is below this.
    pub(crate) fn slots(&self) -> usize {
        self.names.len()
    }

    /// Every held name maps to its id and back; dropped ids have no name and no holder.
    pub(crate) fn consistent(&self) -> bool {
        let n = self.names.len();
        self.refs.len() == n
            && self.ids.len() + self.free.len() == n
            && self
                .ids
                .iter()
                .all(|(name, &i)| !name.is_empty() && self.names.get(i as usize) == Some(name))
            && self
                .free
                .iter()
                .all(|&i| self.names.get(i as usize).is_some_and(String::is_empty))
            && self.ids.values().all(|&i| self.refs[i as usize] > 0)
            && self.free.iter().all(|&i| self.refs[i as usize] == 0)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Interned {
    pub lanes: NameTable,
    pub tenants: NameTable,
    /// Rate keys named by held tasks.
    pub rates: NameTable,
    capset_ids: BTreeMap<Vec<String>, CapSetId>,
    pub capsets: Vec<CapSet>,
    capset_free: BTreeSet<u32>,
    /// Capability sets interned since this table was made or restored.
    #[serde(skip)]
    births: u64,
}

impl Default for Interned {
    fn default() -> Self {
        let mut capset_ids = BTreeMap::new();
        capset_ids.insert(Vec::new(), CapSetId::ANY);
        Interned {
            lanes: NameTable::default(),
            tenants: NameTable::default(),
            rates: NameTable::default(),
            capset_ids,
            capsets: vec![CapSet::default()],
            capset_free: BTreeSet::new(),
            births: 0,
        }
    }
}

impl Interned {
    /// Interns a capability requirement for one more holding task; `coverage` counts
    /// the live workers serving a new one.
    pub(crate) fn capset(
        &mut self,
        caps: &[String],
        coverage: impl FnOnce(&[String]) -> u32,
    ) -> CapSetId {
        let mut key: Vec<String> = caps.to_vec();
        key.sort();
        key.dedup();
        if key.is_empty() {
            return CapSetId::ANY;
        }
        if let Some(&id) = self.capset_ids.get(&key) {
            self.capsets[id.0 as usize].refs += 1;
            return id;
        }
        self.births += 1;
        let set = CapSet {
            coverage: coverage(&key),
            caps: key.clone(),
            blocked: BTreeSet::new(),
            refs: 1,
            born: self.births,
        };
        let id = match self.capset_free.pop_first() {
            Some(i) => {
                self.capsets[i as usize] = set;
                CapSetId(i)
            }
            None => {
                self.capsets.push(set);
                CapSetId((self.capsets.len() - 1) as u32)
            }
        };
        self.capset_ids.insert(key, id);
        id
    }

    /// One holding task fewer; the set is dropped when none is left.
    pub(crate) fn release_capset(&mut self, id: CapSetId) {
        if id == CapSetId::ANY {
            return;
        }
        let set = self
            .capsets
            .get_mut(id.0 as usize)
            .expect("a released capability set was interned");
        assert!(
            set.refs > 0,
            "capability set {} is released by a holder",
            id.0
        );
        set.refs -= 1;
        if set.refs > 0 || self.capset_free.contains(&id.0) {
            return;
        }
        let caps = std::mem::take(&mut set.caps);
        set.coverage = 0;
        set.blocked.clear();
        self.capset_ids.remove(&caps);
        self.capset_free.insert(id.0);
    }

    /// Whether `id` names a held capability set (or `ANY`); dropped sets are skipped
    /// when coverage changes.
    pub(crate) fn capset_held(&self, id: usize) -> bool {
        id == 0 || self.capsets.get(id).is_some_and(|c| c.refs > 0)
    }

    /// Every name maps to an id in range and back to itself; a snapshot from outside is
    /// checked with this before anything indexes by these ids.
    pub(crate) fn consistent(&self) -> bool {
        let held = |i: u32| self.capsets.get(i as usize).is_some_and(|c| c.refs > 0);
        self.lanes.consistent()
            && self.tenants.consistent()
            && self.capset_ids.len() + self.capset_free.len() == self.capsets.len()
            && self.capset_ids.iter().all(|(caps, id)| {
                self.capsets
                    .get(id.0 as usize)
                    .is_some_and(|c| &c.caps == caps)
                    && (id.0 == 0 || held(id.0))
            })
            && self.capset_free.iter().all(|&i| {
                i != 0
                    && self.capsets.get(i as usize).is_some_and(|c| {
                        c.refs == 0 && c.caps.is_empty() && c.coverage == 0 && c.blocked.is_empty()
                    })
            })
    }

    pub(crate) fn caps(&self, id: CapSetId) -> &[String] {
        &self.capsets[id.0 as usize].caps
    }
}

/// Whether a worker advertising `have` can run a task requiring `need` (both sorted).
pub(crate) fn covers(have: &[String], need: &[String]) -> bool {
    need.iter().all(|c| have.binary_search(c).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_names_are_forgotten_and_their_ids_reused() {
        let mut t = NameTable::default();
        let a = t.acquire("a");
        let b = t.acquire("b");
        assert_eq!(t.acquire("a"), a);
        t.release(a);
        assert_eq!(t.get("a"), Some(a), "still held once");
        t.release(a);
        assert_eq!((t.get("a"), t.in_use()), (None, 1));
        assert!(t.consistent());
        assert_eq!(t.acquire("c"), a, "the dropped id is reused");
        assert_eq!((t.name(a), t.name(b), t.slots()), ("c", "b", 2));
        assert!(t.consistent());
    }

    #[test]
    fn dropped_capability_sets_are_reused() {
        let mut n = Interned::default();
        let gpu = n.capset(&["gpu".into()], |_| 3);
        assert_eq!(n.capset(&[], |_| 0), CapSetId::ANY);
        n.release_capset(gpu);
        assert!(!n.capset_held(gpu.0 as usize));
        assert!(n.consistent());
        let ssd = n.capset(&["ssd".into()], |_| 1);
        assert_eq!((ssd, n.capsets[ssd.0 as usize].coverage), (gpu, 1));
        assert_eq!(n.caps(ssd), ["ssd".to_string()]);
        assert!(n.consistent());
    }

    /// `consistent` is what stands between a snapshot from disk and indexing by its
    /// ids: each case breaks one rule and must be caught.
    #[test]
    fn a_name_held_by_nobody_is_inconsistent() {
        let mut t = NameTable::default();
        let a = t.acquire("a");
        assert!(t.consistent());
        t.refs[a as usize] = 0;
        assert!(!t.consistent());
    }

    #[test]
    fn capability_tables_that_disagree_are_inconsistent() {
        let tables = || {
            let mut n = Interned::default();
            let gpu = n.capset(&["gpu".into()], |_| 1);
            let ssd = n.capset(&["ssd".into()], |_| 1);
            n.release_capset(ssd);
            (n, gpu, ssd)
        };
        assert!(tables().0.consistent());
        let (mut held_by_nobody, gpu, _) = tables();
        held_by_nobody.capsets[gpu.0 as usize].refs = 0;
        assert!(!held_by_nobody.consistent());
        let (mut freed_but_kept, _, ssd) = tables();
        freed_but_kept.capsets[ssd.0 as usize].caps = vec!["ssd".into()];
        assert!(!freed_but_kept.consistent());
        let (mut freed_but_covered, _, ssd) = tables();
        freed_but_covered.capsets[ssd.0 as usize].coverage = 1;
        assert!(!freed_but_covered.consistent());
        let (mut bad_lane, ..) = tables();
        let lane = bad_lane.lanes.acquire("x");
        bad_lane.lanes.refs[lane as usize] = 0;
        assert!(!bad_lane.consistent());
    }
}
