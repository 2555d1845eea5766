//! Refusals of the console's API: an HTTP status, a stable code and a message naming
//! what was wrong, sent as `{"code": ..., "error": ...}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use keel_coordinator::CoordinatorError;
use keel_engine::Rejection;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The coordinator cannot answer (not leading, stopped): the page says so and waits.
    pub(crate) fn unavailable(e: &CoordinatorError) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            e.code(),
            format!("the coordinator cannot answer: {e}"),
        )
    }

    /// An engine refusal, with the status a client can act on.
    pub(crate) fn rejected(r: &Rejection) -> ApiError {
        let status = match r {
            Rejection::UnknownJob { .. } | Rejection::UnknownTask { .. } => StatusCode::NOT_FOUND,
            Rejection::JobNameConflict { .. } => StatusCode::CONFLICT,
            Rejection::TenantJobLimit { .. } => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, r.code(), r.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "code": self.code, "error": self.message });
        let mut response = (self.status, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}
