//! The endpoints that change jobs: cancel and retry. Each needs `Authorization: Bearer
//! <token>` with a token the console's [`crate::Authorize`] accepts; a console started
//! without one refuses them all. Browsers send that header cross-origin only after a
//! CORS preflight, which the console never grants, so another site cannot forge them.

use crate::api::json;
use crate::error::ApiError;
use crate::params;
use crate::router::App;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use keel_coordinator::RetryError;
use keel_engine::{Accepted, ClientCommand, Input, JobId, RetryRefusal};

fn authorized(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(authorize) = &app.options.authorize else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "read_only",
            "this console is read-only: start keel serve with --token-file to allow cancel and retry",
        ));
    };
    let unauthorized = |why: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", why);
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("a client token is needed: enter it at the top of the page"))?;
    let token = value
        .as_bytes()
        .strip_prefix(b"Bearer ")
        .ok_or_else(|| unauthorized("authorization must be `Bearer <token>`"))?;
    if authorize(token) {
        Ok(())
    } else {
        Err(unauthorized(
            "the token is not a client token of this coordinator",
        ))
    }
}

/// The job an action names, once its query string is empty and its token may act.
fn acting_on(
    app: &App,
    id: &str,
    raw: Option<&str>,
    headers: &HeaderMap,
) -> Result<JobId, ApiError> {
    params::query(raw, &[])?;
    let job = params::job_id(id)?;
    authorized(app, headers)?;
    Ok(job)
}

/// `POST /api/auth`: whether the presented token may cancel and retry.
pub(crate) async fn check(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorized(&app, &headers)?;
    Ok(json(&serde_json::json!({ "writable": true })))
}

/// `POST /api/jobs/{id}/cancel`
pub(crate) async fn cancel(
    State(app): State<App>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let job = acting_on(&app, &id, raw.as_deref(), &headers)?;
    match app
        .handle
        .apply(Input::Client(ClientCommand::CancelJob { job }))
        .await
    {
        Ok(Some(Ok(Accepted::JobCancelled {
            already_finished, ..
        }))) => Ok(json(
            &serde_json::json!({ "job": job.get(), "already_finished": already_finished }),
        )),
        Ok(Some(Err(rejection))) => Err(ApiError::rejected(&rejection)),
        Ok(other) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_reply",
            format!("the engine answered the cancel with {other:?}"),
        )),
        Err(e) => Err(ApiError::unavailable(&e)),
    }
}

/// `POST /api/jobs/{id}/retry`: submits the failed, cancelled and skipped tasks of a
/// finished job again as a new job linked to it by name.
pub(crate) async fn retry(
    State(app): State<App>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let job = acting_on(&app, &id, raw.as_deref(), &headers)?;
    match app.handle.retry_job(job).await {
        Ok(r) => Ok(json(&serde_json::json!({
            "job": r.job.get(),
            "name": r.name,
            "tasks": r.tasks,
            "duplicate": r.duplicate,
        }))),
        Err(e) => Err(retry_error(&e)),
    }
}

fn retry_error(e: &RetryError) -> ApiError {
    match e {
        RetryError::Refused(r @ RetryRefusal::UnknownJob { .. }) => {
            ApiError::new(StatusCode::NOT_FOUND, r.code(), r.to_string())
        }
        RetryError::Refused(r) => ApiError::new(StatusCode::CONFLICT, r.code(), r.to_string()),
        RetryError::Rejected(r) => {
            let mut error = ApiError::rejected(r);
            error.message = e.to_string();
            error
        }
        RetryError::Coordinator(c) => ApiError::unavailable(c),
        RetryError::Unexpected(_) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.code(), e.to_string())
        }
    }
}
