//! `keel budgets`: every budget the coordinator holds (tenant budgets from its policy,
//! then the budgets of held jobs), with each dimension's use and limits.

use crate::clock::{now_ms, rfc3339, stamp};
use crate::connect::{runtime, ConnectArgs};
use crate::exit::{finish, Exit, Failure, EXIT_CODES};
use crate::output::{one_line, out};
use crate::plan::Format;
use crate::table::table;
use clap::Args;
use keel_engine::BudgetOwner;
use keel_grpc::proto::{BudgetView, DimensionUse};
use keel_grpc::{on_hard_label, owner_from_proto};
use serde_json::{json, Value};
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct BudgetsArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Output format (JSON fields: cli/README.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &BudgetsArgs) -> ExitCode {
    finish("budgets", runtime().block_on(list(args)))
}

async fn list(args: &BudgetsArgs) -> Result<Exit, Failure> {
    let mut client = args.connect.connect().await?;
    let budgets = client.list_budgets().await?.budgets;
    match args.format {
        Format::Text => out!("{}", render(&budgets, now_ms())),
        Format::Json => {
            let list: Vec<Value> = budgets.iter().map(to_json).collect();
            out!("{}", crate::json::document(&json!({ "budgets": list })));
        }
    }
    Ok(Exit::Ok)
}

/// `tenant acme`, or `j7 summarize` for a job's budget.
fn owner_words(v: &BudgetView) -> String {
    match v.owner.as_ref().and_then(owner_from_proto) {
        Some(BudgetOwner::Tenant(t)) => format!("tenant {}", one_line(&t, 40)),
        Some(BudgetOwner::Job(j)) => format!("{j} {}", one_line(&v.job_name, 40)),
        None => "-".into(),
    }
}

/// `tokens 110/100 (soft 80)`: use, then the hard limit, then the soft one.
fn dimension_words(d: &DimensionUse) -> String {
    let hard = d.hard.map(|h| format!("/{h}")).unwrap_or_default();
    let soft = d.soft.map(|s| format!(" (soft {s})")).unwrap_or_default();
    format!("{} {}{hard}{soft}", d.dimension, d.used)
}

/// The `keel budgets` table: one row per budget.
pub fn render(budgets: &[BudgetView], now: u64) -> String {
    if budgets.is_empty() {
        return "no budgets\n".into();
    }
    let rows: Vec<[String; 6]> = budgets
        .iter()
        .map(|v| {
            let dims: Vec<String> = v.dimensions.iter().map(dimension_words).collect();
            [
                owner_words(v),
                one_line(&v.name, 40),
                dims.join(", "),
                v.exhausted
                    .as_ref()
                    .map_or_else(|| "-".into(), |d| format!("exhausted ({d})")),
                on_hard_label(v.on_hard).to_string(),
                v.resets_at_ms.map_or_else(|| "-".into(), |t| stamp(t, now)),
            ]
        })
        .collect();
    let head = ["OWNER", "BUDGET", "USED/HARD", "STATE", "ON HARD", "RESETS"];
    table(head, &rows)
}

fn to_json(v: &BudgetView) -> Value {
    let (owner, job, tenant) = match v.owner.as_ref().and_then(owner_from_proto) {
        Some(BudgetOwner::Tenant(t)) => ("tenant", None, Some(t)),
        Some(BudgetOwner::Job(j)) => ("job", Some(j.get()), None),
        None => ("unknown", None, None),
    };
    let dimensions: Vec<Value> = v
        .dimensions
        .iter()
        .map(|d| json!({ "name": d.dimension, "used": d.used, "soft": d.soft, "hard": d.hard }))
        .collect();
    json!({
        "owner": owner,
        "job": job,
        "job_name": job.map(|_| v.job_name.clone()),
        "tenant": tenant,
        "budget": v.name,
        "dimensions": dimensions,
        "exhausted": v.exhausted,
        "on_hard": on_hard_label(v.on_hard),
        "reports": v.reports,
        "resets_at": v.resets_at_ms.map(rfc3339),
        "resets_at_ms": v.resets_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_grpc::proto::{budget_owner::Owner, BudgetOwner as WireOwner};

    fn view(owner: Owner, exhausted: Option<&str>) -> BudgetView {
        BudgetView {
            owner: Some(WireOwner { owner: Some(owner) }),
            name: "llm".into(),
            job_name: "summarize".into(),
            dimensions: vec![DimensionUse {
                dimension: "tokens".into(),
                used: 110,
                soft: Some(80),
                hard: Some(100),
            }],
            on_hard: 2,
            exhausted: exhausted.map(Into::into),
            reports: 2,
            resets_at_ms: None,
        }
    }

    #[test]
    fn each_budget_is_a_row_naming_its_owner_use_and_state() {
        let text = render(
            &[
                view(Owner::Tenant("acme".into()), None),
                view(Owner::Job(7), Some("tokens")),
            ],
            0,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("OWNER"), "{text}");
        assert!(lines[1].starts_with("tenant acme"), "{text}");
        assert!(lines[1].contains("tokens 110/100 (soft 80)"), "{text}");
        assert!(lines[2].starts_with("j7 summarize"), "{text}");
        assert!(lines[2].contains("exhausted (tokens)"), "{text}");
        assert!(lines[2].contains("revoke"), "{text}");
        assert_eq!(render(&[], 0), "no budgets\n");
    }

    #[test]
    fn json_names_the_owner_kind_and_each_dimension() {
        let v = to_json(&view(Owner::Job(7), Some("tokens")));
        assert_eq!(v["owner"], "job");
        assert_eq!(v["job"], 7);
        assert_eq!(v["tenant"], Value::Null);
        assert_eq!(v["dimensions"][0]["used"], 110);
        assert_eq!(v["exhausted"], "tokens");
        let t = to_json(&view(Owner::Tenant("acme".into()), None));
        assert_eq!(
            (t["owner"].as_str(), t["tenant"].as_str()),
            (Some("tenant"), Some("acme"))
        );
        assert_eq!(t["job_name"], Value::Null);
    }
}
