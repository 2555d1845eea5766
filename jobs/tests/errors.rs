//! Golden error reports for invalid job and pool files in tests/fixtures/: each names
//! the file, line and column, and the offending field or task ids.

use keel_jobs::{load_job, load_pool, Limits, SpecError};
use std::path::Path;

fn load(name: &str) -> Result<(), SpecError> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let file = format!("tests/fixtures/{name}");
    let limits = Limits::default();
    if name.starts_with("pool-") {
        load_pool(&file, &text, &limits).map(drop)
    } else {
        load_job(&file, &text, &limits).map(drop)
    }
}

#[test]
fn every_fixture_is_refused_with_a_golden_report() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 20, "fixtures went missing: {names:?}");
    for name in names {
        let err = load(&name).expect_err(&name);
        let stem = name.trim_end_matches(".toml");
        insta::with_settings!({
            snapshot_path => "../../snapshots",
            prepend_module_to_snapshot => false,
            description => format!("keel plan tests/fixtures/{name}"),
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("plan__error__{stem}"), err.to_string());
        });
    }
}

#[test]
fn unknown_dependency_points_at_the_missing_id() {
    let err = load("unknown-dependency.toml").unwrap_err();
    assert_eq!((err.line, err.column), (11, 20));
    assert_eq!(
        err.message,
        r#"task "load" depends on unknown task "extract2""#
    );
    assert!(err
        .to_string()
        .starts_with("tests/fixtures/unknown-dependency.toml:11:20: "));
}

#[test]
fn cycle_is_printed_in_execution_order() {
    let err = load("cycle.toml").unwrap_err();
    let cycle = err.message.strip_prefix("dependency cycle: ").unwrap();
    let ids: Vec<&str> = cycle.split(" -> ").collect();
    assert_eq!(ids.len(), 4, "{cycle}");
    assert_eq!(ids.first(), ids.last());
    let mut members = ids[..3].to_vec();
    members.sort();
    assert_eq!(members, ["a", "b", "c"]);
    // The report points at the first edge of the cycle as written in the file.
    assert!(
        err.to_string()
            .contains(&format!("deps = [\"{}\"]", ids[0])),
        "{err}"
    );
}

#[test]
fn duplicate_id_points_at_the_second_definition() {
    let err = load("duplicate-id.toml").unwrap_err();
    assert_eq!(err.line, 12);
    assert!(err.message.contains("first on line 5"), "{}", err.message);
}
