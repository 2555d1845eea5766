//! Cancel and retry: refused without the client token (and always on a read-only
//! console), done through the engine with it.

mod support;

use axum::http::{Method, StatusCode};
use keel_engine::{GroupKind, JobSpec, TaskSpec};
use support::*;

fn two_step() -> JobSpec {
    JobSpec::new(
        "two-step",
        vec![
            TaskSpec::new("a"),
            TaskSpec::new("b").after(GroupKind::AllOf, &["a"]),
        ],
    )
}

async fn post(console: &axum::Router, uri: &str, token: Option<&str>) -> Answer {
    request(console, Method::POST, uri, token).await
}

#[tokio::test]
async fn a_read_only_console_refuses_every_change() {
    let handle = coordinator().await;
    let console = console(&handle, false);
    let job = submit(&handle, two_step()).await;
    for uri in [
        format!("/api/jobs/{}/cancel", job.get()),
        format!("/api/jobs/{}/retry", job.get()),
        "/api/auth".to_string(),
    ] {
        let answer = post(&console, &uri, Some(TOKEN)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(answer.json()["error"]
            .as_str()
            .unwrap()
            .contains("--token-file"));
    }
    let view = get(&console, &format!("/api/jobs/{}", job.get()))
        .await
        .json();
    assert_eq!(view["job"]["state"], "queued", "nothing was cancelled");
}

#[tokio::test]
async fn changes_need_the_client_token() {
    let handle = coordinator().await;
    let console = console(&handle, true);
    let job = submit(&handle, two_step()).await;
    let cancel = format!("/api/jobs/{}/cancel", job.get());
    for token in [None, Some("wrong-token-0123456789"), Some("")] {
        let answer = post(&console, &cancel, token).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{token:?}");
    }
    let answer = request(&console, Method::GET, &cancel, Some(TOKEN)).await;
    assert_eq!(
        answer.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "GET never changes anything"
    );
    let view = get(&console, &format!("/api/jobs/{}", job.get()))
        .await
        .json();
    assert_eq!(view["job"]["state"], "queued");
    assert_eq!(view["writable"], true);
    assert_eq!(
        post(&console, "/api/auth", Some(TOKEN)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn cancel_then_retry_makes_one_linked_job() {
    let handle = coordinator().await;
    let console = console(&handle, true);
    let job = submit(&handle, two_step()).await;
    let retry = format!("/api/jobs/{}/retry", job.get());

    let early = post(&console, &retry, Some(TOKEN)).await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert_eq!(early.json()["code"], "not_finished");

    let cancelled = post(
        &console,
        &format!("/api/jobs/{}/cancel", job.get()),
        Some(TOKEN),
    )
    .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.json()["already_finished"], false);
    let view = get(&console, &format!("/api/jobs/{}", job.get()))
        .await
        .json();
    assert_eq!(view["job"]["state"], "cancelled");

    let retried = post(&console, &retry, Some(TOKEN)).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    let retried = retried.json();
    assert_eq!(retried["duplicate"], false);
    assert_eq!(retried["tasks"], 2);
    let new = retried["job"].as_u64().unwrap();
    let view = get(&console, &format!("/api/jobs/{new}")).await.json();
    assert_eq!(view["job"]["retry_of"], job.get());
    assert_eq!(
        view["job"]["name"],
        format!("two-step [retry of job {}]", job.get())
    );

    let again = post(&console, &retry, Some(TOKEN)).await.json();
    assert_eq!(
        (again["job"].as_u64(), again["duplicate"].as_bool()),
        (Some(new), Some(true))
    );

    let unknown = post(&console, "/api/jobs/4242/retry", Some(TOKEN)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let unknown = post(&console, "/api/jobs/4242/cancel", Some(TOKEN)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}
