//! Budget gauges for `/metrics`, read from the engine's budget views: each dimension's
//! use, how many limits are reached now, and how many tasks a reached hard limit holds
//! back.

use keel_engine::{BudgetOwner, BudgetView, Engine, TaskStatus};
use std::fmt::Write;

/// What one read of the engine gives the budget gauges.
pub struct BudgetGauges {
    views: Vec<BudgetView>,
    stopped_tasks: u64,
}

/// Reads the gauges. Only jobs with budget notes (a limit of theirs or their tenant's
/// was reached) are described, so a busy engine without budgets pays nothing more.
pub fn read(engine: &Engine) -> BudgetGauges {
    let stopped_tasks = engine
        .jobs()
        .iter()
        .filter(|j| j.outcome.is_none() && !j.budget_notes.is_empty())
        .filter_map(|j| engine.describe_job(j.id).ok())
        .flat_map(|v| v.tasks)
        .filter(|t| matches!(t.status, TaskStatus::BudgetStopped { .. }))
        .count() as u64;
    BudgetGauges {
        views: engine.budgets(),
        stopped_tasks,
    }
}

fn owner_label(owner: &BudgetOwner) -> String {
    match owner {
        BudgetOwner::Job(j) => j.to_string(),
        BudgetOwner::Tenant(t) => format!("tenant:{t}"),
    }
}

/// Appends the gauges' Prometheus text to `text`.
pub fn render(g: &BudgetGauges, text: &mut String) {
    text.push_str(
        "# HELP keel_budget_used Use of a budget's dimension (this period, for a tenant budget).\n# TYPE keel_budget_used gauge\n",
    );
    let (mut soft, mut hard) = (0u64, 0u64);
    for v in &g.views {
        let owner = owner_label(&v.owner);
        for d in &v.dimensions {
            let _ = writeln!(
                text,
                "keel_budget_used{{owner={owner:?},budget={:?},dimension={:?}}} {}",
                v.name, d.name, d.used
            );
            soft += u64::from(d.soft.is_some_and(|s| d.used >= s));
            hard += u64::from(d.hard.is_some_and(|h| d.used >= h));
        }
    }
    let _ = write!(
        text,
        "# HELP keel_budget_limits_reached Budget dimensions whose use is at or past a limit now, by kind.\n# TYPE keel_budget_limits_reached gauge\n\
         keel_budget_limits_reached{{kind=\"soft\"}} {soft}\nkeel_budget_limits_reached{{kind=\"hard\"}} {hard}\n"
    );
    let _ = write!(
        text,
        "# HELP keel_budget_stopped_tasks Ready tasks held back by a reached hard budget limit.\n# TYPE keel_budget_stopped_tasks gauge\nkeel_budget_stopped_tasks {}\n",
        g.stopped_tasks
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::{DimensionView, JobId, OnHard};

    #[test]
    fn each_dimension_is_a_labelled_gauge_and_reached_limits_are_counted() {
        let view = |owner, used| BudgetView {
            owner,
            name: "llm".into(),
            dimensions: vec![DimensionView {
                name: "tokens".into(),
                used,
                soft: Some(80),
                hard: Some(100),
            }],
            on_hard: OnHard::Finish,
            exhausted: None,
            reports: 1,
            resets_at: None,
        };
        let g = BudgetGauges {
            views: vec![
                view(BudgetOwner::Tenant("acme".into()), 90),
                view(BudgetOwner::Job(JobId::new(7)), 120),
            ],
            stopped_tasks: 3,
        };
        let mut text = String::new();
        render(&g, &mut text);
        for line in [
            "# TYPE keel_budget_used gauge",
            "keel_budget_used{owner=\"tenant:acme\",budget=\"llm\",dimension=\"tokens\"} 90",
            "keel_budget_used{owner=\"j7\",budget=\"llm\",dimension=\"tokens\"} 120",
            "keel_budget_limits_reached{kind=\"soft\"} 2",
            "keel_budget_limits_reached{kind=\"hard\"} 1",
            "keel_budget_stopped_tasks 3",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
    }
}
