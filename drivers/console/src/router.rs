//! Routes, the embedded assets and what every response carries: a Content-Security-
//! Policy that allows only the console's own script and style, and refusals of
//! oversized URLs and bodies before any handler runs.

use crate::error::ApiError;
use crate::live::Hub;
use crate::{actions, api, live, outputs, params, ConsoleOptions};
use axum::body::Body;
use axum::extract::{Path, Request};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use keel_coordinator::Handle;
use std::sync::Arc;

/// Longest accepted path plus query, in bytes.
pub(crate) const MAX_URI: usize = 2048;
/// Largest accepted request body; no endpoint reads one.
pub(crate) const MAX_BODY: u64 = 1024;

pub(crate) const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/style.css");

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct App {
    pub handle: Handle,
    pub hub: Arc<Hub>,
    pub options: ConsoleOptions,
}

/// The console's routes over `handle`, and the hub that must be running (see
/// [`live::run`]) for its live updates.
pub fn router(handle: Handle, options: ConsoleOptions) -> (Router, Arc<Hub>) {
    let hub = Arc::new(Hub::new(options.max_live_views));
    let app = App {
        handle,
        hub: hub.clone(),
        options,
    };
    let router = Router::new()
        .route("/", get(page))
        .route("/workers", get(page))
        .route("/jobs/{id}", get(job_page))
        .route(
            "/assets/app.js",
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/style.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/api/jobs", get(api::jobs))
        .route("/api/jobs/{id}", get(api::job))
        .route("/api/jobs/{id}/tasks/{task}/output", get(outputs::download))
        .route("/api/jobs/{id}/cancel", post(actions::cancel))
        .route("/api/jobs/{id}/retry", post(actions::retry))
        .route("/api/workers", get(api::workers))
        .route("/api/headline", get(api::headline))
        .route("/api/events", get(live::events))
        .route("/api/auth", post(actions::check))
        .fallback(|| async { ApiError::not_found("no such page or endpoint") })
        .with_state(app)
        .layer(middleware::from_fn(guard));
    (router, hub)
}

fn asset(text: &'static str, kind: &'static str) -> Response {
    let mut response = text.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn page() -> Response {
    asset(INDEX, "text/html; charset=utf-8")
}

async fn job_page(Path(id): Path<String>) -> Result<Response, ApiError> {
    params::job_id(&id)?;
    Ok(page().await)
}

/// Refuses oversized requests, then stamps the security headers on every answer.
async fn guard(request: Request, next: Next) -> Response {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let chunked = request.headers().contains_key(header::TRANSFER_ENCODING);
    let api = request.uri().path().starts_with("/api/");
    let mut response = if uri > MAX_URI {
        ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the path and query are longer than {MAX_URI} bytes"),
        )
        .into_response()
    } else if chunked || length.is_some_and(|n| n > MAX_BODY) {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request bodies are limited to {MAX_BODY} bytes with a content-length"),
        )
        .into_response()
    } else {
        next.run(request.map(|_| Body::empty())).await
    };
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &'static str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
