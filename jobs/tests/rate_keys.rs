//! The plan names the rate keys a job's tasks wait on, so whoever reads it knows which
//! buckets of the server's policy file pace the job.

use keel_jobs::{load_job, Limits};

const JOB: &str = r#"
[job]
name = "crawl"

[defaults]
rate_key = "api.example"

[[task]]
id = "a"

[[task]]
id = "b"

[[task]]
id = "c"
rate_key = "db"
"#;

#[test]
fn the_plan_counts_the_tasks_naming_each_rate_key_in_text_and_json() {
    let job = load_job("j.toml", JOB, &Limits::default()).unwrap();
    let plan = keel_jobs::plan(&job, None);
    let text = plan.to_text();
    assert!(
        text.contains("  rate key \"api.example\": 2 tasks\n  rate key \"db\": 1 task\n"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
    assert_eq!(json["job"]["rate_keys"]["api.example"], 2);
    assert_eq!(json["job"]["rate_keys"]["db"], 1);
    let bare = load_job(
        "j.toml",
        "[job]\nname = \"x\"\n\n[[task]]\nid = \"a\"\n",
        &Limits::default(),
    )
    .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&keel_jobs::plan(&bare, None).to_json()).unwrap();
    assert!(json["job"].get("rate_keys").is_none());
}
