//! A job file's `[budgets.NAME]` tables into the engine's budget specs, and the engine's
//! refusal of one (`JobError::InvalidBudget`) back to the key it is about.

use crate::budget_file::BudgetTable;
use keel_engine::{BudgetSpec, MAX_BUDGETS_PER_JOB};
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

type Located = (Range<usize>, String);

/// Where each budget sits in the file, in name order.
#[derive(Default)]
pub(crate) struct BudgetSpans {
    budgets: Vec<Budget>,
}

struct Budget {
    name: String,
    /// The name in its table header.
    span: Range<usize>,
    dimensions: Vec<(String, Range<usize>)>,
}

/// The job's budgets. A `reset` is refused here: only a tenant budget, configured on
/// the server, starts again each period.
pub(crate) fn convert(
    tables: BTreeMap<Spanned<String>, Spanned<BudgetTable>>,
) -> Result<(BTreeMap<String, BudgetSpec>, BudgetSpans), Located> {
    let mut specs = BTreeMap::new();
    let mut spans = BudgetSpans::default();
    for (name, table) in tables {
        let table = table.into_inner();
        if let Some(reset) = &table.reset {
            let msg = format!(
                "budget {:?}: reset is only for tenant budgets (the server's --policy file); a job's budget never resets",
                name.get_ref()
            );
            return Err((reset.span(), msg));
        }
        let spec = table.to_spec(name.get_ref())?;
        spans.budgets.push(Budget {
            name: name.get_ref().clone(),
            span: name.span(),
            dimensions: table
                .limits
                .iter()
                .map(|(k, _)| (k.get_ref().clone(), k.span()))
                .collect(),
        });
        specs.insert(name.into_inner(), spec);
    }
    Ok((specs, spans))
}

/// The span the engine's budget refusal `message` is about: the dimension key it
/// names, else the budget it names, else (too many budgets) the first one over the
/// limit.
pub(crate) fn locate(spans: &BudgetSpans, message: &str) -> Option<Range<usize>> {
    let names = |b: &Budget| message.contains(&format!("budget {:?}", b.name));
    let named = spans.budgets.iter().find(|b| names(b));
    let dimension = |b: &Budget| {
        b.dimensions
            .iter()
            .find(|(d, _)| message.contains(&format!("dimension {d:?}")))
            .map(|(_, s)| s.clone())
    };
    match named {
        Some(b) => dimension(b).or_else(|| Some(b.span.clone())),
        None => spans.budgets.iter().find_map(dimension).or_else(|| {
            spans
                .budgets
                .get(MAX_BUDGETS_PER_JOB)
                .map(|b| b.span.clone())
        }),
    }
}

/// The engine's text, said as the file says it.
pub(crate) fn message(message: &str) -> String {
    if message.starts_with("budget ") || message.starts_with("dimension ") {
        message.to_string()
    } else {
        format!("the job declares {message} ([budgets.NAME] tables)")
    }
}
