//! Real processes: `keel serve --policy` paces tasks naming a rate key with a token
//! bucket, `keel status` says which task waits for which bucket, tasks that name no
//! key are not held back, and a policy mistake stops the server naming the key.

mod process;

use process::{job_file, keel, run_keel, submit, worker, Serve};
use std::path::Path;
use std::time::{Duration, Instant};

const BOUND: Duration = Duration::from_secs(30);

/// Start times in ms since the epoch, per task key, from the lines tasks appended.
fn starts(log: &Path) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (key, ms) = l.split_once(' ')?;
            Some((key.to_string(), ms.trim().parse().ok()?))
        })
        .collect()
}

fn status(url: &str, job: u64, format: &str) -> String {
    let id = job.to_string();
    let (_, out, err) = run_keel(&["status", &id, "--coordinator", url, "--format", format]);
    format!("{out}{err}")
}

#[test]
fn a_policy_bucket_paces_tasks_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[rates.keys.api]\nrate = 2\nper = \"1s\"\nburst = 1\n",
    )
    .unwrap();
    let serve = Serve::start_with(
        &dir.path().join("data"),
        None,
        &["--policy".into(), policy.display().to_string()],
    );
    let url = serve.url();
    let _w = worker(&url, "w1", 8);
    let log = dir.path().join("starts");
    let record = |key: &str| format!("echo \"{key} $(date +%s%3N)\" >> {}", log.display());
    let mut toml = String::from("[job]\nname = \"paced\"\n\n");
    for i in 1..=5 {
        toml.push_str(&format!(
            "[[task]]\nid = \"call{i}\"\nrate_key = \"api\"\ncommand = '{}'\n\n",
            record(&format!("call{i}"))
        ));
    }
    toml.push_str(&format!(
        "[[task]]\nid = \"local\"\ncommand = '{}'\n",
        record("local")
    ));
    let job = submit(&url, &job_file(dir.path(), "paced", &toml));

    // While the bucket refills, status names it and says when its next token comes.
    let started = Instant::now();
    let mut seen = String::new();
    while !seen.contains("waiting for the rate limit of key \"api\"") {
        assert!(started.elapsed() < BOUND, "status never said so:\n{seen}");
        seen = status(&url, job, "text");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen.contains("rate_limited"), "{seen}");
    while starts(&log).len() < 6 {
        assert!(started.elapsed() < BOUND, "{}", status(&url, job, "text"));
        std::thread::sleep(Duration::from_millis(100));
    }

    let all = starts(&log);
    assert_eq!(all.len(), 6, "{all:?}");
    let mut calls: Vec<u64> = all
        .iter()
        .filter(|(k, _)| k.starts_with("call"))
        .map(|(_, t)| *t)
        .collect();
    calls.sort_unstable();
    // Five grants from a bucket of 2 a second with a burst of 1 span at least 2 s; the
    // start of each can lag its grant, so allow 300 ms of that.
    let span = calls[4] - calls[0];
    assert!(
        span >= 1_700,
        "five paced tasks started within {span} ms: {calls:?}"
    );
    let local = all.iter().find(|(k, _)| k == "local").unwrap().1;
    assert!(
        local < calls[0] + 1_000,
        "the task naming no key waited for the bucket: {local} vs {calls:?}"
    );
    eprintln!(
        "paced starts (ms after the first): {:?}",
        calls.iter().map(|t| t - calls[0]).collect::<Vec<_>>()
    );
}

#[test]
fn a_policy_mistake_stops_the_server_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, want) in [
        (
            "[rates.keys.api]\nrate = 0\n",
            "rates.keys.api.rate must be at least 1",
        ),
        (
            "[rates.keys.api]\nrate = 1\nper = \"0ms\"\n",
            "from 1ms to 49d",
        ),
        (
            "[tenants]\ncaps = { acme = 0 }\n",
            "tenants.caps.acme must be at least 1",
        ),
        ("[rates.keys.api\n", "TOML parse error"),
    ] {
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, text).unwrap();
        let out = keel()
            .args(["serve", "--listen", "127.0.0.1:0", "--init", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--policy")
            .arg(&policy)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text:?}: {err}");
        assert!(err.contains(want), "{text:?}: {err}");
        assert!(err.contains("policy.toml"), "{err}");
    }
}
