//! The checked-in 1,000-task example is exactly what the generator produces, so the
//! file and its generator cannot drift apart. Run with KEEL_REGENERATE_EXAMPLES=1 to
//! rewrite the file after changing the generator.

use keel_jobs::{generated_job, load_job, Limits};
use std::path::Path;

#[test]
fn checked_in_example_matches_the_generator() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/generated-1000.toml");
    let text = generated_job("generated-1000", 1000);
    if std::env::var_os("KEEL_REGENERATE_EXAMPLES").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap();
    assert!(
        on_disk == text,
        "examples/generated-1000.toml is stale; rerun with KEEL_REGENERATE_EXAMPLES=1"
    );
}

#[test]
fn generated_jobs_have_the_requested_size_and_validate() {
    for size in [500, 1000, 4321] {
        let text = generated_job("g", size);
        let job = load_job("g.toml", &text, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(job.spec().tasks.len(), size);
    }
}
