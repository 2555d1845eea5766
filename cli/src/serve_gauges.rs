//! Engine gauges for `/metrics`, read every few seconds from the engine (the
//! coordinator's own metrics count its pipeline, not what the engine holds): ready
//! tasks per lane, tasks held back by each rate-limit bucket, each schedule's runs, and
//! the budgets (`serve_budget_gauges`).

use keel_coordinator::Handle;
use keel_engine::{RateScope, ScheduleView};
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one read of the engine gives the gauges.
struct Gauges {
    lanes: Vec<(String, u64)>,
    rate_limited: Vec<(RateScope, String, u64)>,
    schedules: Vec<ScheduleView>,
    budgets: crate::serve_budget_gauges::BudgetGauges,
}

/// Keeps `out` holding the gauges' Prometheus text until the coordinator stops.
pub async fn track(handle: Handle, out: Arc<Mutex<String>>) {
    loop {
        let read = handle
            .read(|engine| Gauges {
                lanes: engine.queued_by_lane(),
                rate_limited: engine.rate_limited(),
                schedules: engine.schedules(),
                budgets: crate::serve_budget_gauges::read(engine),
            })
            .await;
        let Ok(gauges) = read else { return };
        if let Ok(mut slot) = out.lock() {
            *slot = render(&gauges);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

fn render(g: &Gauges) -> String {
    let mut text = String::from(
        "# HELP keel_lane_queue_depth Ready tasks waiting for a grant, per lane.\n# TYPE keel_lane_queue_depth gauge\n",
    );
    for (lane, n) in &g.lanes {
        let _ = writeln!(text, "keel_lane_queue_depth{{lane={lane:?}}} {n}");
    }
    text.push_str(
        "# HELP keel_rate_limited_tasks Ready tasks held back for a token, per bucket.\n# TYPE keel_rate_limited_tasks gauge\n",
    );
    for (scope, name, n) in &g.rate_limited {
        let scope = scope.as_str();
        let _ = writeln!(
            text,
            "keel_rate_limited_tasks{{scope={scope:?},name={name:?}}} {n}"
        );
    }
    let counters = [
        ("runs", "Runs a schedule submitted."),
        (
            "skipped",
            "Due times skipped because the previous run was unfinished.",
        ),
        (
            "missed",
            "Due times missed beyond the grace period and not run.",
        ),
        ("failed", "Runs the engine refused to submit."),
    ];
    for (what, help) in counters {
        let _ = write!(
            text,
            "# HELP keel_schedule_{what}_total {help}\n# TYPE keel_schedule_{what}_total counter\n"
        );
        for s in &g.schedules {
            let n = match what {
                "runs" => s.fired,
                "skipped" => s.skipped,
                "missed" => s.missed,
                _ => s.failed,
            };
            let _ = writeln!(
                text,
                "keel_schedule_{what}_total{{schedule={:?}}} {n}",
                s.spec.name
            );
        }
    }
    crate::serve_budget_gauges::render(&g.budgets, &mut text);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::{JobSpec, ScheduleSpec, TaskSpec, Trigger};

    #[test]
    fn every_gauge_is_named_typed_and_labelled() {
        let spec = ScheduleSpec::new(
            "etl",
            JobSpec::new("etl", vec![TaskSpec::new("a")]),
            Trigger::Every { interval_ms: 1_000 },
        );
        let view = ScheduleView {
            spec,
            created_at: 0,
            next_due: None,
            paused: false,
            last_due: None,
            running: vec![],
            queued: None,
            fired: 7,
            skipped: 2,
            missed: 1,
            failed: 3,
            last_error: None,
        };
        let text = render(&Gauges {
            lanes: vec![("batch".into(), 3)],
            rate_limited: vec![(RateScope::Key, "api".into(), 4)],
            schedules: vec![view],
            budgets: crate::serve_budget_gauges::read(&keel_engine::Engine::new(
                keel_engine::Config::default(),
            )),
        });
        for line in [
            "keel_lane_queue_depth{lane=\"batch\"} 3",
            "# TYPE keel_rate_limited_tasks gauge",
            "keel_rate_limited_tasks{scope=\"key\",name=\"api\"} 4",
            "# TYPE keel_schedule_runs_total counter",
            "keel_schedule_runs_total{schedule=\"etl\"} 7",
            "keel_schedule_skipped_total{schedule=\"etl\"} 2",
            "keel_schedule_missed_total{schedule=\"etl\"} 1",
            "keel_schedule_failed_total{schedule=\"etl\"} 3",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
    }
}
