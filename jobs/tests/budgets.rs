//! Budgets in job files: every key read into the engine's spec, and every mistake
//! refused at the key it is about, naming the budget.

use keel_engine::{DimensionLimit, OnHard};
use keel_jobs::{load_job, Limits};

const FULL: &str = r#"
[job]
name = "summarize"

[budgets.llm]
on_hard = "revoke"
tokens = { soft = 8000, hard = 10000 }
attempts = { hard = 20 }

[budgets.time]
attempt_ms = { hard = 600000 }

[[task]]
id = "a"
command = "summarize.sh"
"#;

#[test]
fn budget_tables_become_the_specs_budgets() {
    let job = load_job("j.toml", FULL, &Limits::default()).unwrap();
    let budgets = &job.spec().budgets;
    assert_eq!(budgets.len(), 2);
    let llm = &budgets["llm"];
    assert_eq!(llm.on_hard, OnHard::Revoke);
    assert_eq!(llm.reset_every_ms, None);
    assert_eq!(
        llm.limits["tokens"],
        DimensionLimit {
            soft: Some(8000),
            hard: Some(10000)
        }
    );
    assert_eq!(
        llm.limits["attempts"],
        DimensionLimit {
            soft: None,
            hard: Some(20)
        }
    );
    let time = &budgets["time"];
    assert_eq!(time.on_hard, OnHard::Finish);
    assert_eq!(time.limits["attempt_ms"].hard, Some(600_000));
}

#[test]
fn a_job_without_budgets_has_none() {
    let src = "[job]\nname = \"x\"\n\n[[task]]\nid = \"a\"\n";
    let job = load_job("j.toml", src, &Limits::default()).unwrap();
    assert!(job.spec().budgets.is_empty());
}

fn refused(src: &str) -> keel_jobs::SpecError {
    load_job("j.toml", src, &Limits::default()).unwrap_err()
}

#[test]
fn engine_refusals_point_at_the_dimension_or_budget_they_name() {
    let src = "[job]\nname = \"x\"\n\n[budgets.llm]\ntokens = { soft = 9, hard = 5 }\n\n[[task]]\nid = \"a\"\n";
    let err = refused(src);
    assert_eq!((err.line, err.column), (5, 1));
    assert_eq!(
        err.message,
        "budget \"llm\" dimension \"tokens\": soft 9 is above hard 5"
    );

    let src = "[job]\nname = \"x\"\n\n[budgets.llm]\ntokens = {}\n\n[[task]]\nid = \"a\"\n";
    let err = refused(src);
    assert_eq!((err.line, err.column), (5, 1));
    assert!(
        err.message.contains("sets neither soft nor hard"),
        "{}",
        err.message
    );

    let src =
        "[job]\nname = \"x\"\n\n[budgets.\"l m\"]\ntokens = { hard = 1 }\n\n[[task]]\nid = \"a\"\n";
    let err = refused(src);
    assert_eq!((err.line, err.column), (4, 10));
    assert!(
        err.message.starts_with("budget \"l m\" holds ' '"),
        "{}",
        err.message
    );

    let src =
        "[job]\nname = \"x\"\n\n[budgets.empty]\non_hard = \"finish\"\n\n[[task]]\nid = \"a\"\n";
    let err = refused(src);
    assert_eq!((err.line, err.column), (4, 10));
    assert_eq!(err.message, "budget \"empty\" limits no dimension");
}

#[test]
fn more_budgets_than_the_engine_allows_point_at_the_first_over_it() {
    let mut src = String::from("[job]\nname = \"x\"\n\n");
    for i in 0..9 {
        src.push_str(&format!("[budgets.b{i}]\nattempts = {{ hard = 1 }}\n"));
    }
    src.push_str("\n[[task]]\nid = \"a\"\n");
    let err = refused(&src);
    assert_eq!(err.line, 4 + 2 * 8, "{err}");
    assert_eq!(
        err.message,
        "the job declares 9 budgets, at most 8 ([budgets.NAME] tables)"
    );
}

#[test]
fn file_level_mistakes_name_the_budget_and_key() {
    let src = "[job]\nname = \"x\"\n\n[budgets.llm]\nreset = \"1d\"\ntokens = { hard = 1 }\n\n[[task]]\nid = \"a\"\n";
    let err = refused(src);
    assert_eq!(err.line, 5);
    assert!(
        err.message
            .starts_with("budget \"llm\": reset is only for tenant budgets"),
        "{}",
        err.message
    );

    let src = "[job]\nname = \"x\"\n\n[budgets.llm]\ntokens = { hard = 1, limit = 2 }\n\n[[task]]\nid = \"a\"\n";
    let err = refused(src);
    assert_eq!(err.line, 5);
    assert!(
        err.message.contains("unknown field `limit`"),
        "{}",
        err.message
    );
}

#[test]
fn the_plan_shows_the_budgets_in_text_and_json() {
    let job = load_job("j.toml", FULL, &Limits::default()).unwrap();
    let plan = keel_jobs::plan(&job, None);
    let text = plan.to_text();
    assert!(
        text.contains("  budget llm: attempts hard 20, tokens soft 8000 hard 10000; at a hard limit: revoke running attempts\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "  budget time: attempt_ms hard 600000; at a hard limit: finish running attempts\n"
        ),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
    assert_eq!(
        json["job"]["budgets"]["llm"]["limits"]["tokens"]["soft"],
        8000
    );
    assert_eq!(json["job"]["budgets"]["llm"]["on_hard"], "revoke");
    let bare = load_job(
        "j.toml",
        "[job]\nname = \"x\"\n\n[[task]]\nid = \"a\"\n",
        &Limits::default(),
    )
    .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&keel_jobs::plan(&bare, None).to_json()).unwrap();
    assert!(json["job"].get("budgets").is_none());
}
