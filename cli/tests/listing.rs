//! Real processes: `keel jobs` filters and limits, `keel workers` shows lanes,
//! capabilities, running tasks and blacklists, and `keel submit` / `keel status` say in
//! words why work waits (a lane nobody serves, a capability nobody has, blacklisted
//! workers).

mod process;

use process::{job_file, run_keel, until, until_workers, worker_with, Serve};
use serde_json::Value;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn spec(name: &str, tenant: &str, lane: &str, body: &str) -> String {
    format!(
        "[job]\nname = \"{name}\"\ntenant = \"{tenant}\"\nlane = \"{lane}\"\n\n[defaults]\nretry = {{ max_attempts = 1 }}\n{body}"
    )
}

fn ids(doc: &Value) -> Vec<u64> {
    doc["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_listed_newest_first_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let c = ["--coordinator", url.as_str()];
    let _w = worker_with(&url, "wx", &["--lane", "x"]);
    let task = "\n[[task]]\nid = \"t\"\ncommand = \"true\"\n";
    let submit = |name: &str, tenant: &str, lane: &str, wait: bool| {
        let path = job_file(dir.path(), name, &spec(name, tenant, lane, task));
        let mut args = vec!["submit", path.to_str().unwrap(), c[0], c[1]];
        if wait {
            args.push("--wait");
        }
        let (code, out, err) = run_keel(&args);
        assert_eq!(code, 0, "{err}");
        (out.trim().parse::<u64>().unwrap(), err)
    };
    let (a, _) = submit("a", "t1", "x", true);
    let (b, warned) = submit("b", "t2", "y", false);
    assert!(
        warned.contains("warning: no live worker serves lane \"y\": the job waits until one does"),
        "{warned}"
    );
    let (c3, _) = submit("c", "t1", "y", false);

    let list = |extra: &[&str]| {
        let (code, out, err) = run_keel(&[&["jobs", "--format", "json"][..], &c, extra].concat());
        assert_eq!(code, 0, "{err}");
        json(&out)
    };
    let all = list(&[]);
    assert_eq!(ids(&all), vec![c3, b, a]);
    assert_eq!(all["matched"], 3);
    let first = &all["jobs"][2];
    assert_eq!(first["name"], "a");
    assert_eq!(first["tenant"], "t1");
    assert_eq!(first["lane"], "x");
    assert_eq!(first["state"], "succeeded");
    assert_eq!(first["task_states"]["succeeded"], 1);
    assert!(first["submitted_at"].as_str().unwrap().contains('T'));
    assert_eq!(all["jobs"][0]["task_states"]["queued"], 1);
    assert_eq!(ids(&list(&["--state", "succeeded"])), vec![a]);
    assert_eq!(ids(&list(&["--state", "running"])), vec![c3, b]);
    assert_eq!(ids(&list(&["--tenant", "t1"])), vec![c3, a]);
    assert_eq!(ids(&list(&["--lane", "y", "--tenant", "t2"])), vec![b]);
    let newest = list(&["--limit", "1"]);
    assert_eq!(
        (ids(&newest), newest["matched"].as_u64()),
        (vec![c3], Some(3))
    );
    assert_eq!(
        run_keel(&[&["jobs", "--state", "done"][..], &c].concat()).0,
        2
    );

    let (code, text, err) = run_keel(&[&["jobs", "--limit", "2"][..], &c].concat());
    assert_eq!(code, 0);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("ID  NAME  TENANT  LANE  STATE"),
        "{text}"
    );
    assert!(lines[1].starts_with(&format!("{c3}   c ")), "{text}");
    assert!(
        lines[1].contains("running") && lines[1].contains("1 queued"),
        "{text}"
    );
    assert!(err.contains("the newest 2 of 3 jobs"), "{err}");

    // Why the lane-y jobs wait, in words.
    let (code, text, _) = run_keel(&[&["status", &b.to_string()][..], &c].concat());
    assert_eq!(code, 0);
    assert!(
        text.contains("why: no live worker serves lane \"y\""),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_show_lanes_capabilities_leases_and_blacklists() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let c = ["--coordinator", url.as_str()];
    let _gpu = worker_with(
        &url,
        "gpu-1",
        &[
            "--lane",
            "x",
            "--lane",
            "y",
            "--capability",
            "gpu",
            "--concurrency",
            "2",
        ],
    );
    let _any = worker_with(&url, "any-1", &["--all-lanes"]);
    let _bad = worker_with(&url, "bl-1", &["--lane", "bl", "--capability", "flaky"]);
    until_workers(&url, &["gpu-1", "any-1", "bl-1"]);

    // A long task needing the GPU; a task needing what nobody has.
    let body = "\n[[task]]\nid = \"train\"\ncommand = \"sleep 30\"\ncapabilities = [\"gpu\"]\n\n[[task]]\nid = \"tpu\"\ncommand = \"true\"\ncapabilities = [\"tpu\"]\n";
    let path = job_file(dir.path(), "train", &spec("train", "ml", "x", body));
    let (code, out, err) = run_keel(&[&["submit", path.to_str().unwrap()][..], &c].concat());
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: no live worker has capability \"tpu\": task \"tpu\" waits"),
        "{err}"
    );
    let train: u64 = out.trim().parse().unwrap();
    until(&url, train, "train running", |v| {
        v.tasks[0].state == "running"
    })
    .await;

    // Five failures in a row blacklist bl-1 (the only worker with "flaky"); the sixth
    // task then waits.
    let mut body = String::new();
    for i in 0..6 {
        body.push_str(&format!(
            "\n[[task]]\nid = \"f{i}\"\ncommand = \"exit 1\"\ncapabilities = [\"flaky\"]\n"
        ));
    }
    let path = job_file(dir.path(), "flaky", &spec("flaky", "ops", "bl", &body));
    let (_, out, _) = run_keel(&[&["submit", path.to_str().unwrap()][..], &c].concat());
    let flaky: u64 = out.trim().parse().unwrap();
    until(&url, flaky, "five failures", |v| {
        v.tasks.iter().filter(|t| t.state == "failed").count() == 5
    })
    .await;

    let (code, out, err) = run_keel(&[&["workers", "--format", "json"][..], &c].concat());
    assert_eq!(code, 0, "{err}");
    let doc = json(&out);
    let worker = |id: &str| {
        doc["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == id)
            .unwrap_or_else(|| panic!("{id} is not listed: {doc}"))
            .clone()
    };
    let gpu = worker("gpu-1");
    assert_eq!(gpu["lanes"], serde_json::json!(["x", "y"]));
    assert_eq!(gpu["capabilities"], serde_json::json!(["gpu"]));
    assert_eq!(
        (gpu["max_concurrency"].as_u64(), gpu["running"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(gpu["leases"][0]["job"], train);
    assert_eq!(gpu["leases"][0]["key"], "train");
    assert_eq!(gpu["status"], "active");
    assert!(gpu["last_seen_ms"].as_u64().unwrap() > 0);
    assert!(gpu["last_seen"].as_str().unwrap().contains('T'));
    let any = worker("any-1");
    assert_eq!(
        (any["all_lanes"].as_bool(), any["lanes"].clone()),
        (Some(true), serde_json::json!(["*"]))
    );
    let bl = worker("bl-1");
    assert_eq!(bl["status"], "blacklisted");
    assert!(bl["blacklisted_until_ms"].as_u64().is_some(), "{bl}");

    let (code, text, _) = run_keel(&[&["workers"][..], &c].concat());
    assert_eq!(code, 0);
    let row = |id: &str| {
        text.lines()
            .find(|l| l.starts_with(id))
            .unwrap()
            .to_string()
    };
    assert!(row("gpu-1").contains(&format!("j{train}/train")), "{text}");
    assert!(row("any-1").contains(" all "), "{text}");
    assert!(row("bl-1").contains("blacklisted until "), "{text}");

    // Status says why the last flaky task and the tpu task wait.
    let status = |job: u64| {
        let (_, out, _) =
            run_keel(&[&["status", &job.to_string(), "--format", "json"][..], &c].concat());
        json(&out)
    };
    let waiting = status(flaky);
    let f5 = waiting["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "f5")
        .unwrap();
    assert!(
        f5["explanation"]
            .as_str()
            .unwrap()
            .starts_with("every worker that can run it is blacklisted until "),
        "{f5}"
    );
    let blocked = status(train);
    assert_eq!(blocked["tasks"][1]["state"], "blocked");
    assert_eq!(
        blocked["tasks"][1]["explanation"],
        "no live worker has capability \"tpu\""
    );
    assert_eq!(
        blocked["tasks"][1]["capabilities"],
        serde_json::json!(["tpu"])
    );
    let (_, text, _) = run_keel(&[&["status", &train.to_string()][..], &c].concat());
    let row = text.lines().find(|l| l.starts_with("train ")).unwrap();
    assert!(
        row.contains("running") && row.contains("on gpu-1, lease until"),
        "{text}"
    );
}
