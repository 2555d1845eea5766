//! Random requests at the router: any method, path, query and authorization header.
//! No request may panic the console or get a 500, and every answer carries the
//! Content-Security-Policy.

mod support;

use axum::body::Body;
use axum::http::{Method, Request, Uri};
use axum::Router;
use proptest::prelude::*;
use support::*;
use tower::ServiceExt;

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("api".to_string()),
        Just("jobs".to_string()),
        Just("workers".to_string()),
        Just("events".to_string()),
        Just("cancel".to_string()),
        Just("retry".to_string()),
        Just("assets".to_string()),
        Just("app.js".to_string()),
        Just("1".to_string()),
        Just("18446744073709551615".to_string()),
        Just("18446744073709551616".to_string()),
        Just("..".to_string()),
        Just("%2e%2e".to_string()),
        Just("%00".to_string()),
        Just("".to_string()),
        "[a-z0-9%.~_-]{0,12}",
        "\\PC{0,6}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("state".to_string()),
        Just("tenant".to_string()),
        Just("lane".to_string()),
        Just("q".to_string()),
        Just("limit".to_string()),
        "[a-z%+=&]{0,5}",
    ];
    let value = prop_oneof![
        Just("running".to_string()),
        Just("0".to_string()),
        Just("500".to_string()),
        Just("%ff%fe".to_string()),
        Just("%".to_string()),
        "[a-zA-Z0-9%+&=;]{0,40}",
        "\\PC{0,10}",
    ];
    prop::collection::vec((key, value), 0..5).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::HEAD),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::OPTIONS),
    ]
}

/// What a browser does to a typed URL: bytes a request target cannot hold are
/// percent-encoded; `%` stays as typed, so broken escapes still arrive.
fn encode(raw: &str) -> String {
    let mut out = String::new();
    for b in raw.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%?".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn send(router: &Router, method: Method, uri: Uri, auth: Option<Vec<u8>>) {
    let mut request = Request::builder().method(method.clone()).uri(uri.clone());
    if let Some(auth) = auth {
        if let Ok(value) = axum::http::HeaderValue::from_bytes(&auth) {
            request = request.header("authorization", value);
        }
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(
        !response.status().is_server_error() || response.status() == 503,
        "{method} {uri}: {}",
        response.status()
    );
    assert!(
        response.headers().contains_key("content-security-policy"),
        "{method} {uri}"
    );
}

/// The console's routes, with `{id}` replaced by a random segment; random segments
/// may follow.
const ROUTES: [&str; 10] = [
    "/",
    "/workers",
    "/jobs/{id}",
    "/assets/{id}",
    "/api/jobs",
    "/api/jobs/{id}",
    "/api/jobs/{id}/cancel",
    "/api/jobs/{id}/retry",
    "/api/{id}",
    "/{id}",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn no_request_panics_or_fails_the_server(
        method in method(),
        route in prop::sample::select(ROUTES.to_vec()),
        id in segment(),
        segments in prop::collection::vec(segment(), 0..3),
        query in query(),
        auth in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
    ) {
        let mut path = route.replace("{id}", &id);
        if !segments.is_empty() {
            path = format!("{}/{}", path.trim_end_matches('/'), segments.join("/"));
        }
        let raw = if query.is_empty() { path } else { format!("{path}?{query}") };
        let uri = encode(&raw).parse::<Uri>();
        prop_assert!(uri.is_ok(), "{raw:?} did not make a request target");
        let uri = uri.unwrap();
        RUNTIME.with(|(rt, router)| rt.block_on(send(router, method, uri, auth)));
    }
}

thread_local! {
    /// One coordinator and router for all cases, holding a finished job, a running
    /// one and a worker, so ids in random paths sometimes name real things.
    static RUNTIME: (tokio::runtime::Runtime, Router) = {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let router = rt.block_on(async {
            let handle = coordinator().await;
            let spec = |name: &str| keel_engine::JobSpec::new(name, vec![keel_engine::TaskSpec::new("a")]);
            submit(&handle, spec("one")).await;
            submit(&handle, spec("two")).await;
            let mut worker = Worker::register(&handle, "w1").await;
            let fence = worker.claim(&handle).await;
            worker.finish(&handle, fence, Some("boom")).await;
            worker.claim(&handle).await;
            console(&handle, true)
        });
        (rt, router)
    };
}
