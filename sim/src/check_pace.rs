//! When the engine's invariant check runs. The check walks the whole state, so at a
//! fixed interval its cost per apply grows with the state: a run whose state is ten
//! times larger pays ten times as much per apply for the same checks. A budget spaces
//! the checks by the state they walk, which keeps that cost a bounded share.

/// The spacing of invariant checks over a run's applies.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CheckPace {
    every: u32,
    budget: u32,
    /// The apply count at which the next check is due.
    next: u64,
}

impl CheckPace {
    /// A check after every `every` applies (0: none until the end). With a `budget`
    /// above 0, checks are also at least `footprint / budget` applies apart, so a check
    /// walks about `budget` items of state per apply at most.
    pub(crate) fn new(every: u32, budget: u32) -> CheckPace {
        CheckPace {
            every,
            budget,
            next: u64::from(every),
        }
    }

    /// Whether a check is due once `applies` applies have run.
    pub(crate) fn due(&self, applies: u64) -> bool {
        self.every > 0 && applies >= self.next
    }

    /// A check ran after `applies` applies; `footprint` says what it walked, and is
    /// only asked for when a budget spaces the checks.
    pub(crate) fn checked(&mut self, applies: u64, footprint: impl FnOnce() -> u64) {
        let mut gap = u64::from(self.every);
        if self.budget > 0 {
            gap = gap.max(footprint() / u64::from(self.budget));
        }
        self.next = applies.saturating_add(gap);
    }
}

#[cfg(test)]
mod tests {
    use super::CheckPace;

    fn checks(mut pace: CheckPace, applies: u64, footprint: u64) -> Vec<u64> {
        let mut at = Vec::new();
        for n in 1..=applies {
            if pace.due(n) {
                at.push(n);
                pace.checked(n, || footprint);
            }
        }
        at
    }

    #[test]
    fn without_a_budget_checks_fall_on_every_multiple() {
        assert_eq!(checks(CheckPace::new(3, 0), 10, 1_000_000), [3, 6, 9]);
        assert_eq!(checks(CheckPace::new(1, 0), 3, 1_000_000), [1, 2, 3]);
    }

    #[test]
    fn zero_means_no_check_during_the_run() {
        assert!(checks(CheckPace::new(0, 4), 100, 10).is_empty());
    }

    #[test]
    fn a_budget_spaces_checks_by_the_footprint() {
        // 400 items at 4 per apply: 100 applies apart, not 10.
        assert_eq!(checks(CheckPace::new(10, 4), 350, 400), [10, 110, 210, 310]);
        // A small state keeps the fixed interval.
        assert_eq!(checks(CheckPace::new(10, 4), 35, 20), [10, 20, 30]);
    }
}
