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

const EDGES: &str = r#"
[job]
name = "pipeline"

[[task]]
id = "produce"

[[task]]
id = "count"
stream_from = ["produce"]

[[task]]
id = "sample"
stream_from = [{ task = "produce", policy = "bounded", capacity = 100, on_full = "drop_oldest" }]

[[task]]
id = "watch"
stream_from = [{ task = "produce", policy = "newest" }, { task = "count", policy = "broadcast" }]
"#;

#[test]
fn each_spelling_of_a_streaming_edge_loads_and_the_plan_shows_it() {
    use keel_engine::{EdgePolicy, OnFull};
    let job = load_job("j.toml", EDGES, &Limits::default()).unwrap();
    let edges: Vec<Vec<(&str, EdgePolicy)>> = job
        .spec()
        .tasks
        .iter()
        .map(|t| {
            t.stream_from
                .iter()
                .map(|e| (e.from.as_str(), e.policy))
                .collect()
        })
        .collect();
    let bounded = EdgePolicy::Bounded {
        capacity: 100,
        on_full: OnFull::DropOldest,
    };
    assert_eq!(
        edges,
        [
            vec![],
            vec![("produce", EdgePolicy::Fifo)],
            vec![("produce", bounded)],
            vec![
                ("produce", EdgePolicy::Newest),
                ("count", EdgePolicy::Broadcast)
            ],
        ]
    );
    let text = keel_jobs::plan(&job, None).to_text();
    for line in [
        "stream edge \"produce\" -> \"count\": fifo",
        "stream edge \"produce\" -> \"sample\": bounded 100, drop_oldest when full",
        "stream edge \"count\" -> \"watch\": broadcast",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

#[test]
fn a_bad_streaming_edge_is_refused_pointing_at_it() {
    let cases = [
        (
            "stream_from = [{ task = \"a\", policy = \"bounded\" }]",
            "a bounded edge needs capacity = N",
        ),
        (
            "stream_from = [{ task = \"a\", policy = \"fifo\", capacity = 3 }]",
            "capacity and on_full belong to a bounded edge, not a fifo one",
        ),
        (
            "stream_from = [{ task = \"a\", policy = \"lifo\" }]",
            "unknown edge policy \"lifo\"",
        ),
        (
            "stream_from = [\"nope\"]",
            "depends on unknown task \"nope\"",
        ),
    ];
    for (line, wanted) in cases {
        let job = format!(
            "[job]\nname = \"x\"\n\n[[task]]\nid = \"a\"\n\n[[task]]\nid = \"b\"\n{line}\n"
        );
        let err = load_job("j.toml", &job, &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("j.toml:9:") && err.contains(wanted),
            "{line}: {err}"
        );
    }
}
