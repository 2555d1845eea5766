//! A task's `stream` setting reaches the engine's spec in each of its spellings.

use keel_engine::StreamMode;
use keel_jobs::{load_job, Limits};

const JOB: &str = r#"
[job]
name = "logs"

[[task]]
id = "plain"

[[task]]
id = "durable"
stream = "durable"

[[task]]
id = "summary"
stream = "newest"

[[task]]
id = "tail"
stream = { keep = 500 }
"#;

#[test]
fn each_spelling_of_a_stream_mode_loads() {
    let job = load_job("j.toml", JOB, &Limits::default()).unwrap();
    let modes: Vec<_> = job.spec().tasks.iter().map(|t| t.stream).collect();
    assert_eq!(
        modes,
        [
            StreamMode::Durable,
            StreamMode::Durable,
            StreamMode::Newest,
            StreamMode::Bounded { frames: 500 }
        ]
    );
}

#[test]
fn a_stream_table_with_another_key_is_refused_naming_it() {
    let job = "[job]\nname = \"x\"\n\n[[task]]\nid = \"a\"\nstream = { last = 3 }\n";
    let err = load_job("j.toml", job, &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("j.toml:6:10") && err.contains("unknown field `last`"),
        "{err}"
    );
}
