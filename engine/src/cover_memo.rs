//! A worker's remembered answers to "does it serve this capability set". Dispatch asks
//! it for every waiting worker against every queue head each time it runs, and a
//! worker's capabilities never change for the life of its record, so each answer is
//! worked out once per set instead of by comparing strings every time.

use crate::intern::{covers, CapSetId, Interned};

/// Indexed by capability set id: the `born` of the set the answer was for, and the
/// answer. Not part of the state (a restored worker starts with none), so it cannot
/// make two equal states differ.
#[derive(Clone, Debug, Default)]
pub(crate) struct CoverMemo(Vec<Option<(u64, bool)>>);

/// Answers worked out while the memo could only be read (dispatch reads the worker
/// beside the rest of the state), to be written into it afterwards: after the first
/// dispatches a worker takes part in, there are none, and the worker is not looked up
/// again to write.
#[derive(Default)]
pub(crate) struct Learned(Vec<(usize, u64, bool)>);

impl CoverMemo {
    /// Whether a worker advertising `have` (sorted) serves the held set `set`.
    pub(crate) fn covers(
        &self,
        have: &[String],
        names: &Interned,
        set: CapSetId,
        learned: &mut Learned,
    ) -> bool {
        if set == CapSetId::ANY {
            return true;
        }
        let i = set.0 as usize;
        let born = names.capsets[i].born;
        if let Some(Some((b, answer))) = self.0.get(i) {
            if *b == born {
                return *answer;
            }
        }
        let answer = covers(have, names.caps(set));
        learned.0.push((i, born, answer));
        answer
    }

    /// Keeps what `learned` worked out.
    pub(crate) fn learn(&mut self, learned: Learned) {
        for (i, born, answer) in learned.0 {
            if self.0.len() <= i {
                self.0.resize(i + 1, None);
            }
            self.0[i] = Some((born, answer));
        }
    }
}

impl Learned {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn an_answer_is_not_reused_for_a_set_that_took_a_dropped_sets_id() {
        let mut names = Interned::default();
        let gpu = names.capset(&caps(&["gpu"]), |_| 1);
        let mut memo = CoverMemo::default();
        let have = caps(&["gpu"]);
        let mut learned = Learned::default();
        assert!(memo.covers(&have, &names, gpu, &mut learned));
        assert!(!learned.is_empty(), "a new answer is learned");
        memo.learn(learned);
        let mut learned = Learned::default();
        assert!(memo.covers(&have, &names, gpu, &mut learned));
        assert!(learned.is_empty(), "a kept answer is not worked out again");
        names.release_capset(gpu);
        let ssd = names.capset(&caps(&["ssd"]), |_| 0);
        assert_eq!(ssd, gpu, "the dropped id is reused");
        assert!(
            !memo.covers(&have, &names, ssd, &mut learned),
            "the new set is asked afresh"
        );
        assert!(memo.covers(&have, &names, CapSetId::ANY, &mut learned));
    }
}
