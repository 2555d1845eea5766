//! The console's JSON API over a real coordinator: lists, filters, one job with its
//! graph and attempts, workers, refusals of bad input, and the headers every answer
//! carries.

mod support;

use axum::http::{Method, StatusCode};
use keel_engine::{GroupKind, JobSpec, TaskSpec};
use support::*;

fn pipeline(name: &str) -> JobSpec {
    JobSpec::new(
        name,
        vec![
            TaskSpec::new("extract"),
            TaskSpec::new("load").after(GroupKind::AllOf, &["extract"]),
        ],
    )
}

#[tokio::test]
async fn the_jobs_list_shows_state_and_counts_and_filters_them() {
    let handle = coordinator().await;
    let console = console(&handle, false);
    let mut etl = pipeline("nightly-etl");
    etl.tenant = "acme".into();
    let etl = submit(&handle, etl).await;
    // No worker serves lane "batch": the report stays queued.
    let mut report = pipeline("report");
    report.lane = "batch".into();
    let other = submit(&handle, report).await;
    let mut worker = Worker::register(&handle, "w1").await;
    let fence = worker.claim(&handle).await;

    let list = get(&console, "/api/jobs").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let list = list.json();
    assert_eq!(list["total"], 2);
    let jobs = list["jobs"].as_array().unwrap();
    assert_eq!(jobs[0]["id"], other.get(), "newest first");
    let running = jobs.iter().find(|j| j["id"] == etl.get()).unwrap();
    assert_eq!(running["state"], "running");
    assert_eq!(running["tenant"], "acme");
    assert_eq!(
        running["counts"],
        serde_json::json!([["waiting", 1], ["running", 1]])
    );
    assert_eq!(list["lanes"], serde_json::json!(["batch", "default"]));

    for (query, expected) in [
        ("state=running", vec![etl.get()]),
        ("state=queued", vec![other.get()]),
        ("state=finished", vec![]),
        ("tenant=acme", vec![etl.get()]),
        ("lane=batch", vec![other.get()]),
        ("q=ETL", vec![etl.get()]),
        (&format!("q={}", other.get()), vec![other.get()]),
        ("limit=1", vec![other.get()]),
    ] {
        let got = get(&console, &format!("/api/jobs?{query}")).await.json();
        let ids: Vec<u64> = got["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, expected, "{query}");
    }

    worker.finish(&handle, fence, None).await;
    let fence = worker.claim(&handle).await;
    worker.finish(&handle, fence, None).await;
    let done = get(&console, "/api/jobs?state=succeeded").await.json();
    assert_eq!(done["jobs"][0]["id"], etl.get());
    assert_eq!(done["jobs"][0]["done"], 2);
}

#[tokio::test]
async fn a_job_page_has_its_graph_tasks_attempts_and_errors() {
    let handle = coordinator().await;
    let console = console(&handle, false);
    let mut spec = pipeline("<img src=x onerror=alert(1)>");
    spec.tasks[0].retry.max_attempts = 1;
    let mut later = TaskSpec::new("later");
    later.delay_ms = 3_600_000;
    spec.tasks.push(later);
    let job = submit(&handle, spec).await;
    let mut worker = Worker::register(&handle, "w<1>").await;
    let fence = worker.claim(&handle).await;
    worker.finish(&handle, fence, Some("disk <full>")).await;

    let answer = get(&console, &format!("/api/jobs/{}", job.get())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let d = answer.json();
    assert_eq!(
        d["job"]["state"], "queued",
        "the delayed task keeps the job open"
    );
    let dag = d["dag_svg"].as_str().unwrap();
    assert!(
        dag.contains(r#"data-key="extract" data-state="failed""#),
        "{dag}"
    );
    assert!(
        dag.contains(r#"data-key="load" data-state="skipped""#),
        "{dag}"
    );
    assert!(
        dag.contains("&lt;img src=x"),
        "the job name is escaped: {dag}"
    );
    assert!(!dag.contains("<img"));
    let timeline = d["timeline_svg"].as_str().unwrap();
    assert!(timeline.contains(">w&lt;1&gt;</text>") && !timeline.contains("w<1>"));
    let tasks = d["tasks"].as_array().unwrap();
    assert_eq!(tasks[0]["error"], "disk <full>");
    assert_eq!(tasks[1]["upstream"], serde_json::json!(["extract"]));
    assert_eq!(tasks[1]["needs"], "all");
    assert_eq!(
        (tasks[2]["state"].as_str(), tasks[2]["detail"].as_str()),
        (Some("delayed"), Some("not before"))
    );
    let submitted = d["job"]["submitted_at"].as_u64().unwrap();
    assert_eq!(tasks[2]["until"].as_u64(), Some(submitted + 3_600_000));
    assert_eq!(d["attempts"][0]["end"], "failed: disk <full>");
    assert_eq!(d["attempts"][0]["worker"], "w<1>");
    assert_eq!(d["writable"], false);

    let missing = get(&console, "/api/jobs/999").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["code"], "unknown_job");
    let bad = get(&console, "/api/jobs/12x").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["error"].as_str().unwrap().contains("job id"));
}

#[tokio::test]
async fn the_workers_page_shows_leases_and_when_each_was_last_heard() {
    let handle = coordinator().await;
    let console = console(&handle, false);
    let job = submit(&handle, pipeline("p")).await;
    let mut worker = Worker::register(&handle, "w1").await;
    worker.claim(&handle).await;
    let list = get(&console, "/api/workers").await.json();
    assert_eq!(list["total"], 1);
    let w = &list["workers"][0];
    assert_eq!(w["id"], "w1");
    assert_eq!(w["status"], "active");
    assert_eq!(w["lanes"], serde_json::json!(["default"]));
    assert_eq!(w["capabilities"], serde_json::json!(["cpu"]));
    assert_eq!(w["lease_count"], 1);
    assert_eq!(w["leases"][0][0], job.get());
    assert_eq!(w["leases"][0][2], "extract");
    let heard = w["last_seen"].as_u64().unwrap();
    assert!(heard > 0 && heard <= list["now"].as_u64().unwrap() + 1);
}

#[tokio::test]
async fn bad_input_is_refused_with_a_message_naming_it() {
    let handle = coordinator().await;
    let console = console(&handle, false);
    for (uri, status, says) in [
        ("/api/jobs?state=nope", StatusCode::BAD_REQUEST, "state"),
        ("/api/jobs?limit=0", StatusCode::BAD_REQUEST, "limit"),
        (
            "/api/jobs?x=1",
            StatusCode::BAD_REQUEST,
            "unknown parameter",
        ),
        ("/api/jobs?q=%ff", StatusCode::BAD_REQUEST, "UTF-8"),
        ("/api/jobs?tenant=%00", StatusCode::BAD_REQUEST, "control"),
        ("/api/workers?x", StatusCode::BAD_REQUEST, "takes none"),
        ("/jobs/abc", StatusCode::BAD_REQUEST, "job id"),
        ("/nothing", StatusCode::NOT_FOUND, "no such page"),
    ] {
        let answer = get(&console, uri).await;
        assert_eq!(answer.status, status, "{uri}: {}", answer.body);
        let error = answer.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(says), "{uri}: {error}");
    }
    let long = format!("/api/jobs?q={}", "a".repeat(3000));
    assert_eq!(get(&console, &long).await.status, StatusCode::URI_TOO_LONG);
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let handle = coordinator().await;
    let console = console(&handle, false);
    for (method, uri) in [
        (Method::GET, "/"),
        (Method::GET, "/jobs/1"),
        (Method::GET, "/assets/app.js"),
        (Method::GET, "/api/jobs"),
        (Method::GET, "/missing"),
        (Method::DELETE, "/api/jobs"),
        (Method::POST, "/api/jobs/1/cancel"),
    ] {
        let answer = request(&console, method.clone(), uri, None).await;
        let csp = answer.headers.get("content-security-policy");
        let csp = csp.and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{method} {uri}: {csp:?}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(answer.headers["x-content-type-options"], "nosniff");
        assert_eq!(answer.headers["x-frame-options"], "DENY");
    }
    let page = get(&console, "/workers").await;
    assert!(page
        .body
        .contains(r#"<script src="/assets/app.js" defer></script>"#));
    assert!(!page.body.contains("<script>"), "no inline script");
    let script = get(&console, "/assets/app.js").await;
    assert_eq!(
        script.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(
        !script.body.contains("innerHTML"),
        "text goes in as text nodes"
    );
}
