//! Task outputs on the job page: a short preview beside each task, and the whole
//! output as a download. Only the winning attempt's bytes exist to be shown.

use crate::error::ApiError;
use crate::params;
use crate::router::App;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use keel_engine::{Engine, JobId, TaskId};
use serde::Serialize;
use std::collections::BTreeMap;

/// Bytes of an output shown inline; the rest is downloaded.
const PREVIEW_BYTES: usize = 512;

/// What the job page shows of one task's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct OutputPreview {
    pub size: u64,
    /// Its first bytes as text, cut on a character boundary; `None` when they are not
    /// UTF-8 (binary data is downloaded, not shown).
    pub text: Option<String>,
    /// Whether `text` is all of it.
    pub whole: bool,
}

/// The preview of `bytes`.
pub(crate) fn preview(bytes: &[u8]) -> OutputPreview {
    let head = &bytes[..bytes.len().min(PREVIEW_BYTES)];
    let text = match std::str::from_utf8(head) {
        Ok(text) => Some(text.to_string()),
        // A cut through a character: keep what precedes it, if it is all text.
        Err(e) if e.error_len().is_none() => {
            Some(String::from_utf8_lossy(&head[..e.valid_up_to()]).into_owned())
        }
        Err(_) => None,
    };
    OutputPreview {
        size: bytes.len() as u64,
        whole: text.as_ref().is_some_and(|t| t.len() == bytes.len()),
        text,
    }
}

/// Previews of the outputs of `tasks` that have one.
pub(crate) fn previews(e: &Engine, tasks: &[TaskId]) -> BTreeMap<u64, OutputPreview> {
    tasks
        .iter()
        .filter_map(|t| {
            let out = e.task_output(*t).ok()?;
            Some((t.get(), preview(&out.output?.0)))
        })
        .collect()
}

/// `GET /api/jobs/{id}/tasks/{task}/output`: the whole output, as a download.
pub(crate) async fn download(
    State(app): State<App>,
    Path((job, task)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    params::query(raw.as_deref(), &[])?;
    let job = params::job_id(&job)?;
    let task = params::task_id(&task)?;
    let read = app
        .read(move |e| {
            let out = e.task_output(task)?;
            Ok::<_, keel_engine::Rejection>((out.job, out.key, out.output))
        })
        .await?;
    let (owner, key, output) = read.map_err(|r| ApiError::rejected(&r))?;
    if owner != job {
        return Err(ApiError::not_found(format!(
            "task {task} is not in job {job}"
        )));
    }
    let bytes = output.ok_or_else(|| {
        ApiError::not_found(format!("task {task} has no output: it has not succeeded"))
    })?;
    Ok(attachment(job, &key, bytes.0.to_vec()))
}

/// The bytes as a file named after the job and the task's key (only the key's safe
/// characters: it came from a user).
fn attachment(job: JobId, key: &str, bytes: Vec<u8>) -> Response {
    let safe: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let disposition = format!("attachment; filename=\"job-{}-{safe}.out\"", job.get());
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_show_text_cut_on_a_character_and_hide_binary() {
        assert_eq!(
            preview(b"42\n"),
            OutputPreview {
                size: 3,
                text: Some("42\n".into()),
                whole: true
            }
        );
        let long = "é".repeat(400);
        let p = preview(long.as_bytes());
        assert_eq!((p.size, p.whole), (800, false));
        assert_eq!(p.text.unwrap(), "é".repeat(256));
        assert_eq!(preview(&[0xff, 0, 1]).text, None);
    }
}
