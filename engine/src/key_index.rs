//! A job's task keys, indexed once for validation: resolving every dependency and
//! streaming edge by key must not cost a search of the task list each.

use crate::reject::JobError;
use crate::spec::JobSpec;

/// Task keys by 64-bit hash, sorted: sorting integers is much cheaper than sorting
/// strings, and equal hashes are confirmed by comparing the keys themselves.
pub(crate) struct KeyIndex<'a> {
    spec: &'a JobSpec,
    by_hash: Vec<(u64, u32)>,
}

impl<'a> KeyIndex<'a> {
    pub(crate) fn new(spec: &'a JobSpec) -> Result<Self, JobError> {
        let mut by_hash: Vec<(u64, u32)> = spec
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (xxhash_rust::xxh3::xxh3_64(t.key.as_bytes()), i as u32))
            .collect();
        by_hash.sort_unstable();
        let index = KeyIndex { spec, by_hash };
        let mut first_dup: Option<u32> = None;
        for run in index.by_hash.chunk_by(|a, b| a.0 == b.0) {
            for (n, a) in run.iter().enumerate() {
                let key = &spec.tasks[a.1 as usize].key;
                let dup = run[n + 1..]
                    .iter()
                    .map(|b| a.1.max(b.1))
                    .find(|&b| spec.tasks[b as usize].key == *key);
                if let Some(d) = dup {
                    first_dup = Some(first_dup.map_or(d, |f| f.min(d)));
                }
            }
        }
        match first_dup {
            Some(i) => Err(JobError::DuplicateTask {
                key: spec.tasks[i as usize].key.clone(),
            }),
            None => Ok(index),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<u32> {
        let h = xxhash_rust::xxh3::xxh3_64(key.as_bytes());
        let start = self.by_hash.partition_point(|(k, _)| *k < h);
        self.by_hash[start..]
            .iter()
            .take_while(|(k, _)| *k == h)
            .map(|(_, i)| *i)
            .find(|&i| self.spec.tasks[i as usize].key == key)
    }
}
