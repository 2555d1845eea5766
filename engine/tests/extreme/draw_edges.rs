//! Streaming edges in a run: which admitted tasks consume which, and the reads a
//! `ReadEdge` step makes of them.

use super::super::Step;
use super::{recent, Seen};
use keel_engine::*;

impl Seen {
    /// Notes the consumers of a job admitted with its first task at `first`.
    pub(super) fn admitted(&mut self, first: TaskId, spec: &JobSpec) {
        for (i, t) in spec.tasks.iter().enumerate() {
            if !t.stream_from.is_empty() {
                let keys = t.stream_from.iter().map(|e| e.from.clone()).collect();
                self.edges.insert(TaskId::nth_after(first, i as u64), keys);
            }
        }
    }

    /// A recent consumer's lease and the key of one of its edges (`from` picks which),
    /// or, before any consumer ran, a recent lease and a key that may name nothing.
    pub(super) fn edge_of(&self, lease: u8, from: u8) -> Option<(Fence, WorkerId, String)> {
        if let Some((fence, w, keys)) = recent(&self.consumers, lease) {
            return Some((fence, w, keys[from as usize % keys.len()].clone()));
        }
        let (fence, w) = recent(&self.leases, lease)?;
        Some((fence, w, format!("t{}", from % 6)))
    }

    /// Reads the edge a `ReadEdge` step names: refused or answered, never a panic, and
    /// a page holds at most `limit` frames in rising order, each before its `next`.
    pub(crate) fn read_edge(&self, engine: &Engine, step: &Step) {
        let Step::ReadEdge {
            lease,
            from,
            cursor,
            limit,
        } = step
        else {
            return;
        };
        let Some((fence, _, from)) = self.edge_of(*lease, *from) else {
            return;
        };
        let read = EdgeRead {
            from: cursor.map(|c| c.get()),
            limit: limit.get(),
        };
        let Ok(page) = engine.read_edge(fence.task, &from, read) else {
            return;
        };
        assert!(page.frames.len() <= limit.get() as usize, "{page:?}");
        let seqs: Vec<u64> = page.frames.iter().map(|f| f.seq).collect();
        assert!(seqs.is_sorted_by(|a, b| a < b), "{page:?}");
        assert!(seqs.last().is_none_or(|&last| last < page.next), "{page:?}");
    }
}
