//! tonic refuses a request over `max_decoding_message_size` before any handler runs,
//! with OUT_OF_RANGE and a message that names neither the setting nor what to do. This
//! wrapper around a service rewrites that refusal (a status in the response headers) as
//! RESOURCE_EXHAUSTED naming `max_message_bytes`, like every other limit refusal. A worker
//! frame over the limit is read by the session itself and refused there the same way.

use crate::status::oversized;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::codegen::{http, Service};
use tonic::server::NamedService;
use tonic::Status;

#[derive(Clone)]
pub(crate) struct NameSizeLimit<S>(pub S);

impl<S: NamedService> NamedService for NameSizeLimit<S> {
    const NAME: &'static str = S::NAME;
}

type Boxed<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for NameSizeLimit<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    ResBody: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Boxed<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let response = self.0.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            rename(response.headers_mut());
            Ok(response)
        })
    }
}

/// Rewrites an oversized-message status carried in `headers`, leaving others alone.
fn rename(headers: &mut http::HeaderMap) {
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    let Some(named) = oversized(&status, "request") else {
        return;
    };
    headers.remove(Status::GRPC_STATUS_DETAILS);
    // Adding a status with an ASCII message cannot fail; if it did, the original stays.
    let _ = named.add_header(headers);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn an_oversized_refusal_in_the_headers_is_renamed_and_others_are_kept() {
        let mut headers = http::HeaderMap::new();
        Status::out_of_range(
            "Error, decoded message length too large: found 300 bytes, the limit is: 200 bytes",
        )
        .add_header(&mut headers)
        .unwrap();
        rename(&mut headers);
        let status = Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status
            .message()
            .starts_with("limit_reached: max_message_bytes = 200: a request of 300 bytes"));

        let mut other = http::HeaderMap::new();
        Status::not_found("unknown_job: j9")
            .add_header(&mut other)
            .unwrap();
        rename(&mut other);
        let kept = Status::from_header_map(&other).unwrap();
        assert_eq!(
            (kept.code(), kept.message()),
            (Code::NotFound, "unknown_job: j9")
        );
    }
}
