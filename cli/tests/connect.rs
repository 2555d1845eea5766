//! What the `keel` commands say when they cannot use a coordinator, and `keel serve`
//! refusing a memory budget it cannot work within.

mod process;

use process::{free_port, keel};

fn stderr_of(args: &[&str]) -> (bool, String) {
    let out = keel().args(args).output().expect("keel runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

#[test]
fn a_command_names_the_address_and_the_cause() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let (ok, stderr) = stderr_of(&["status", "1", "--coordinator", &url]);
    assert!(!ok);
    assert_eq!(
        stderr,
        format!("keel status: cannot reach the coordinator at {url}: connection refused (nothing listens there)")
    );
    let other = format!("http://127.0.0.1:{}", free_port());
    let (ok, stderr) = stderr_of(&[
        "status",
        "1",
        "--coordinator",
        &url,
        "--coordinator",
        &other,
        "--connect-timeout-ms",
        "300",
    ]);
    assert!(!ok);
    assert!(
        stderr.starts_with("keel status: no coordinator leads among 2 addresses: "),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{other}: connection refused")),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_a_memory_budget_below_its_floor() {
    let dir = std::env::temp_dir().join(format!("keel-connect-test-{}", std::process::id()));
    let dir = dir.to_string_lossy().to_string();
    let (ok, stderr) = stderr_of(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &dir,
        "--max-memory",
        "100MiB",
    ]);
    assert!(!ok);
    assert_eq!(
        stderr,
        "keel serve: --max-memory 100MiB is below the floor of 256MiB"
    );
    assert!(
        !std::path::Path::new(&dir).exists(),
        "the data directory was created before the budget was checked"
    );
    let (ok, stderr) = stderr_of(&["serve", "--data-dir", &dir, "--max-memory", "2 parsecs"]);
    assert!(!ok);
    assert!(stderr.contains("unknown unit \"parsecs\""), "{stderr}");
}
