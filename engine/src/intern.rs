//! Small integer ids for lanes, tenants and capability sets, so the hot path compares
//! integers instead of strings. Capability sets also carry how many live workers can
//! serve them and which ready tasks wait for such a worker.

use crate::ids::TaskId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CapSetId(pub u32);

impl CapSetId {
    /// The empty requirement: any worker serves it, so it is never blocked.
    pub const ANY: CapSetId = CapSetId(0);
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct CapSet {
    /// Sorted and distinct.
    pub caps: Vec<String>,
    /// Registered, non-draining workers advertising every capability in `caps`.
    pub coverage: u32,
    /// Ready tasks with this requirement while `coverage` is zero.
    pub blocked: BTreeSet<TaskId>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Interned {
    lane_ids: BTreeMap<String, u32>,
    pub lanes: Vec<String>,
    tenant_ids: BTreeMap<String, u32>,
    pub tenants: Vec<String>,
    capset_ids: BTreeMap<Vec<String>, CapSetId>,
    pub capsets: Vec<CapSet>,
}

impl Default for Interned {
    fn default() -> Self {
        let mut capset_ids = BTreeMap::new();
        capset_ids.insert(Vec::new(), CapSetId::ANY);
        Interned {
            lane_ids: BTreeMap::new(),
            lanes: Vec::new(),
            tenant_ids: BTreeMap::new(),
            tenants: Vec::new(),
            capset_ids,
            capsets: vec![CapSet::default()],
        }
    }
}

fn intern(ids: &mut BTreeMap<String, u32>, names: &mut Vec<String>, name: &str) -> u32 {
    if let Some(&id) = ids.get(name) {
        return id;
    }
    let id = names.len() as u32;
    ids.insert(name.to_string(), id);
    names.push(name.to_string());
    id
}

impl Interned {
    pub fn lane(&mut self, name: &str) -> u32 {
        intern(&mut self.lane_ids, &mut self.lanes, name)
    }

    pub fn tenant(&mut self, name: &str) -> u32 {
        intern(&mut self.tenant_ids, &mut self.tenants, name)
    }

    pub fn tenant_id(&self, name: &str) -> Option<u32> {
        self.tenant_ids.get(name).copied()
    }

    /// Interns a capability requirement; `coverage` counts the live workers serving a
    /// new one.
    pub fn capset(&mut self, caps: &[String], coverage: impl FnOnce(&[String]) -> u32) -> CapSetId {
        let mut key: Vec<String> = caps.to_vec();
        key.sort();
        key.dedup();
        if let Some(&id) = self.capset_ids.get(&key) {
            return id;
        }
        let coverage = coverage(&key);
        let id = CapSetId(self.capsets.len() as u32);
        self.capset_ids.insert(key.clone(), id);
        self.capsets.push(CapSet {
            caps: key,
            coverage,
            blocked: BTreeSet::new(),
        });
        id
    }

    /// Every name maps to an id in range and back to itself; a snapshot from outside is
    /// checked with this before anything indexes by these ids.
    pub fn consistent(&self) -> bool {
        let names_ok = |ids: &BTreeMap<String, u32>, names: &[String]| {
            ids.len() == names.len()
                && ids
                    .iter()
                    .all(|(n, &i)| names.get(i as usize).is_some_and(|m| m == n))
        };
        names_ok(&self.lane_ids, &self.lanes)
            && names_ok(&self.tenant_ids, &self.tenants)
            && self.capset_ids.len() == self.capsets.len()
            && self.capset_ids.iter().all(|(caps, id)| {
                self.capsets
                    .get(id.0 as usize)
                    .is_some_and(|c| &c.caps == caps)
            })
    }

    pub fn caps(&self, id: CapSetId) -> &[String] {
        &self.capsets[id.0 as usize].caps
    }
}

/// Whether a worker advertising `have` can run a task requiring `need` (both sorted).
pub(crate) fn covers(have: &[String], need: &[String]) -> bool {
    need.iter().all(|c| have.binary_search(c).is_ok())
}
