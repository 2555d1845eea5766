//! The read endpoints: the jobs list, one job, the workers and the headline, as JSON.

use crate::dag;
use crate::error::ApiError;
use crate::outputs;
use crate::params::{self, JobFilter};
use crate::router::App;
use crate::timeline;
use crate::views::{self, AttemptRow, JobRow, TaskRow, MAX_TASK_ROWS};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use keel_engine::{JobSpec, JobView, Time};
use serde::Serialize;
use std::collections::BTreeMap;

/// `value` as a JSON response.
pub(crate) fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = body.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(e) => ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "encoding",
            format!("the answer could not be encoded: {e}"),
        )
        .into_response(),
    }
}

impl App {
    fn now(&self) -> Time {
        self.options.clock.now_ms()
    }

    /// Runs `f` against the engine, or says why the coordinator cannot answer.
    pub(crate) async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&keel_engine::Engine) -> R + Send + 'static,
    ) -> Result<R, ApiError> {
        self.handle
            .read(f)
            .await
            .map_err(|e| ApiError::unavailable(&e))
    }
}

/// `GET /api/jobs?state=&tenant=&lane=&q=&limit=`
pub(crate) async fn jobs(
    State(app): State<App>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let filter = JobFilter::from_query(raw.as_deref())?;
    let now = app.now();
    let list = app.read(move |e| views::job_list(e, &filter, now)).await?;
    Ok(json(&list))
}

#[derive(Serialize)]
pub(crate) struct JobDetail {
    pub now: Time,
    pub job: JobRow,
    pub tasks: Vec<TaskRow>,
    pub tasks_total: usize,
    pub attempts: Vec<AttemptRow>,
    pub attempts_total: usize,
    pub dag_svg: Option<String>,
    pub timeline_svg: Option<String>,
    pub writable: bool,
}

/// `GET /api/jobs/{id}`
pub(crate) async fn job(
    State(app): State<App>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    params::query(raw.as_deref(), &[])?;
    let id = params::job_id(&id)?;
    let read = app
        .read(move |e| {
            let view = e.describe_job(id)?;
            let counts = e.task_counts(id)?;
            // The spec is only needed to draw the graph and name upstream tasks.
            let spec = (view.tasks.len() <= dag::MAX_DRAWN.max(MAX_TASK_ROWS))
                .then(|| e.job_spec(id).ok())
                .flatten();
            let shown: Vec<_> = view
                .tasks
                .iter()
                .take(MAX_TASK_ROWS)
                .map(|t| t.id)
                .collect();
            let outputs = outputs::previews(e, &shown);
            Ok::<_, keel_engine::Rejection>((view, counts, spec, outputs))
        })
        .await?;
    let (view, counts, spec, mut outputs) = read.map_err(|r| ApiError::rejected(&r))?;
    let mut detail = detail(
        view,
        &counts,
        spec.as_ref(),
        app.now(),
        app.options.authorize.is_some(),
    );
    for row in &mut detail.tasks {
        row.output = outputs.remove(&row.id);
    }
    Ok(json(&detail))
}

fn detail(
    view: JobView,
    counts: &keel_engine::TaskCounts,
    spec: Option<&JobSpec>,
    now: Time,
    writable: bool,
) -> JobDetail {
    let job = JobRow::new(&view.status, counts);
    let (attempts, attempts_total) = views::attempt_rows(&view.tasks);
    let mut tasks: Vec<TaskRow> = view
        .tasks
        .iter()
        .take(MAX_TASK_ROWS)
        .map(TaskRow::new)
        .collect();
    let mut state_of = BTreeMap::new();
    for t in &view.tasks {
        state_of.insert(t.key.as_str(), t.status.label());
    }
    if let Some(spec) = spec {
        let groups: BTreeMap<&str, _> = spec
            .tasks
            .iter()
            .filter_map(|t| Some((t.key.as_str(), t.deps.as_ref()?)))
            .collect();
        for row in &mut tasks {
            if let Some(group) = groups.get(row.key.as_str()) {
                row.upstream = group.upstream.clone();
                row.needs = Some(match group.kind {
                    keel_engine::GroupKind::AllOf => "all".to_string(),
                    keel_engine::GroupKind::AnyOf => "any".to_string(),
                    keel_engine::GroupKind::Quorum(k) => {
                        format!("{k} of {}", group.upstream.len())
                    }
                });
            }
        }
    }
    let until = view.status.finished_at.unwrap_or(now);
    JobDetail {
        now,
        dag_svg: spec.and_then(|s| dag::svg(s, &state_of)),
        timeline_svg: timeline::svg(job.id, &attempts, view.status.submitted_at, until),
        job,
        tasks_total: view.tasks.len(),
        tasks,
        attempts,
        attempts_total,
        writable,
    }
}

/// `GET /api/workers`
pub(crate) async fn workers(
    State(app): State<App>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    params::query(raw.as_deref(), &[])?;
    let now = app.now();
    let list = app.read(move |e| views::worker_list(e, now)).await?;
    Ok(json(&list))
}

/// `GET /api/headline`: the numbers of the latest sample.
pub(crate) async fn headline(
    State(app): State<App>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    params::query(raw.as_deref(), &[])?;
    Ok(json(&app.hub.headline()))
}
