//! The plan as a report for people: one block per section, task lists wrapped, times
//! written as durations. Every line derives from the `Plan`, so the text and the JSON
//! never disagree.

use crate::duration::format as dur;
use crate::plan::{Limit, Plan, Warning};
use std::fmt::Write;

/// Column at which task lists wrap.
const WIDTH: usize = 96;
/// Task ids shown in a warning before the rest are counted instead.
const SHOWN: usize = 8;

impl Plan<'_> {
    /// The plan as text for a person reviewing it in a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write_job(&mut out);
        self.write_pool(&mut out);
        self.write_stages(&mut out);
        self.write_critical_path(&mut out);
        self.write_warnings(&mut out);
        out
    }

    fn write_job(&self, out: &mut String) {
        let j = &self.job;
        let _ = writeln!(out, "job {:?}", j.name);
        let _ = writeln!(
            out,
            "  tenant {}, lane {}, priority {}",
            j.tenant, j.lane, j.priority
        );
        let stages = plural(self.stages.len() as u64, "stage");
        let _ = writeln!(
            out,
            "  {} in {stages}, {} with an estimate",
            plural(j.tasks, "task"),
            j.estimated_tasks
        );
        let deadline = j.deadline_ms.map_or("none".to_string(), dur);
        let cap = j
            .max_concurrency
            .map_or("none".to_string(), |c| c.to_string());
        let _ = writeln!(out, "  deadline {deadline}, max concurrency {cap}");
        for (name, b) in &j.budgets {
            let _ = writeln!(out, "  budget {name}: {}", budget_words(b));
        }
        for (key, n) in &j.rate_keys {
            let _ = writeln!(out, "  rate key {key:?}: {}", plural(*n, "task"));
        }
        for (task, keeps) in &j.bounded_streams {
            let kept = match keeps {
                1 => "only the newest frame".to_string(),
                n => format!("the last {n} frames"),
            };
            let _ = writeln!(out, "  stream of {task:?} keeps {kept}");
        }
        for e in &j.stream_edges {
            let policy = match (e.capacity, e.on_full) {
                (Some(c), Some(full)) => format!("bounded {c}, {full} when full"),
                _ => e.policy.to_string(),
            };
            let _ = writeln!(out, "  stream edge {:?} -> {:?}: {policy}", e.from, e.to);
        }
        let from = if j.result_named {
            "named in job.result"
        } else {
            "the sink tasks"
        };
        let ids: Vec<&str> = j.result.iter().map(String::as_str).collect();
        let _ = writeln!(out, "  result ({from}): {}", shown(&ids));
    }

    fn write_pool(&self, out: &mut String) {
        let Some(pool) = &self.pool else {
            out.push_str("\npool: none given\n");
            return;
        };
        let _ = writeln!(
            out,
            "\npool: {}, {}",
            plural(pool.workers, "worker"),
            plural(pool.slots, "slot")
        );
        let name_width = pool.entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
        let sizes: Vec<String> = pool
            .entries
            .iter()
            .map(|e| format!("{} x {}", e.count, plural(u64::from(e.concurrency), "slot")))
            .collect();
        let size_width = sizes.iter().map(String::len).max().unwrap_or(0);
        for (e, size) in pool.entries.iter().zip(&sizes) {
            let lanes = if e.lanes.is_empty() {
                "default".to_string()
            } else {
                e.lanes.join(", ")
            };
            let _ = writeln!(
                out,
                "  {:name_width$}  {size:size_width$}  capabilities [{}]  lanes [{lanes}]",
                e.name,
                e.capabilities.join(", "),
            );
        }
    }

    fn write_stages(&self, out: &mut String) {
        out.push_str("\nstages, tasks in schedule order (by priority, then longest remaining work, then shortest delay, then id)\n");
        for s in &self.stages {
            let why = match s.limited_by {
                Limit::Width => "stage width",
                Limit::MaxConcurrency => "job max concurrency",
                Limit::Pool => "pool slots",
            };
            let _ = writeln!(
                out,
                "  stage {}: {}, at most {} at once ({why})",
                s.index,
                plural(s.width, "task"),
                s.max_parallel
            );
            for n in &s.needs {
                let served = match &n.served_by {
                    None => String::new(),
                    Some(names) if names.is_empty() => ": no pool entry serves them".to_string(),
                    Some(names) => format!(": served by {}", names.join(", ")),
                };
                let _ = writeln!(
                    out,
                    "    needs [{}] for {}{served}",
                    n.capabilities.join(", "),
                    plural(n.tasks, "task")
                );
            }
            wrap(out, &s.tasks, "    ");
        }
    }

    fn write_critical_path(&self, out: &mut String) {
        let c = &self.critical_path;
        let _ = writeln!(
            out,
            "\ncritical path: {} over {}",
            dur(c.length_ms),
            plural(c.steps.len() as u64, "task")
        );
        let id_width = c.steps.iter().map(|s| s.task.len()).max().unwrap_or(0);
        for s in &c.steps {
            let _ = writeln!(
                out,
                "  {:id_width$}  {} .. {}",
                s.task,
                dur(s.start_ms),
                dur(s.finish_ms)
            );
        }
    }

    fn write_warnings(&self, out: &mut String) {
        if self.warnings.is_empty() {
            out.push_str("\nwarnings: none\n");
            return;
        }
        out.push_str("\nwarnings\n");
        for w in &self.warnings {
            let text = match w {
                Warning::NoWorkerCanRun {
                    lane,
                    capabilities,
                    tasks,
                } => {
                    let ids = shown(tasks);
                    format!(
                        "no pool entry serves lane {lane} with capabilities [{}], so {} cannot run: {ids}",
                        capabilities.join(", "),
                        plural(tasks.len() as u64, "task")
                    )
                }
                Warning::CapSerialisesStage {
                    stage,
                    width,
                    max_concurrency,
                } => format!(
                    "stage {stage} has {width} tasks but max concurrency {max_concurrency} runs at most {max_concurrency} of them at once"
                ),
                Warning::DeadlineBeforeCriticalPath {
                    deadline_ms,
                    critical_path_ms,
                } => format!(
                    "the deadline ({}) is shorter than the critical path ({})",
                    dur(*deadline_ms),
                    dur(*critical_path_ms)
                ),
            };
            let _ = writeln!(out, "  - {text}");
        }
    }
}

/// The first `SHOWN` ids comma-separated, then how many more there are.
fn shown(ids: &[&str]) -> String {
    let mut text = ids[..ids.len().min(SHOWN)].join(", ");
    if ids.len() > SHOWN {
        let _ = write!(text, " (+{} more)", ids.len() - SHOWN);
    }
    text
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Writes `ids` comma-separated, wrapping lines before `WIDTH` columns.
fn wrap(out: &mut String, ids: &[&str], indent: &str) {
    let mut line = String::from(indent);
    for (k, id) in ids.iter().enumerate() {
        let piece = if k + 1 < ids.len() {
            format!("{id},")
        } else {
            id.to_string()
        };
        if line.len() > indent.len() && line.len() + 1 + piece.len() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(&piece);
    }
    if line.len() > indent.len() {
        out.push_str(&line);
        out.push('\n');
    }
}

/// `tokens soft 8000 hard 10000, attempts hard 20; on hard limit: finish`.
fn budget_words(b: &keel_engine::BudgetSpec) -> String {
    let dims: Vec<String> = b
        .limits
        .iter()
        .map(|(d, l)| {
            let soft = l.soft.map(|s| format!(" soft {s}")).unwrap_or_default();
            let hard = l.hard.map(|h| format!(" hard {h}")).unwrap_or_default();
            format!("{d}{soft}{hard}")
        })
        .collect();
    let on_hard = match b.on_hard {
        keel_engine::OnHard::Finish => "finish running attempts",
        keel_engine::OnHard::Revoke => "revoke running attempts",
    };
    format!("{}; at a hard limit: {on_hard}", dims.join(", "))
}
