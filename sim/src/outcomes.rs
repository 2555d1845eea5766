//! How each job ended, by name, as the released effects told it: the engine's job
//! outcome labels, or `rejected` for a submission the coordinator refused.

use std::collections::BTreeMap;

#[derive(Default)]
pub(crate) struct Outcomes {
    by_name: BTreeMap<String, &'static str>,
}

impl Outcomes {
    /// The submission of `name` was refused (unless the job had already ended).
    pub(crate) fn rejected(&mut self, name: &str) {
        self.by_name.entry(name.to_string()).or_insert("rejected");
    }

    /// Records how `name` ended; false if it had already ended.
    pub(crate) fn finished(&mut self, name: &str, outcome: &'static str) -> bool {
        self.by_name.insert(name.to_string(), outcome).is_none()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'static str> {
        self.by_name.get(name).copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }

    pub(crate) fn all(&self) -> &BTreeMap<String, &'static str> {
        &self.by_name
    }
}

#[cfg(test)]
mod tests {
    use super::Outcomes;

    #[test]
    fn a_refused_submission_is_rejected_unless_its_job_already_ended() {
        let mut outcomes = Outcomes::default();
        outcomes.rejected("new");
        assert!(outcomes.finished("done", "succeeded"));
        outcomes.rejected("done");
        assert_eq!(outcomes.get("new"), Some("rejected"));
        assert_eq!(outcomes.get("done"), Some("succeeded"));
        assert!(
            !outcomes.finished("done", "failed"),
            "a second end is reported"
        );
        assert_eq!(outcomes.len(), 2);
    }
}
