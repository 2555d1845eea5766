//! A job client that follows the leader. Given several addresses, a call that finds
//! its coordinator gone (connection failed, UNAVAILABLE: not leading, stopping, a
//! failed append) is made again on whichever coordinator leads, with backoff, for up
//! to `failover_timeout`. With one address a call is made once.
//!
//! Every call is safe to make twice:
//! - `SubmitJob`: the engine deduplicates a job by name and spec while it is live or
//!   retained, so a submission repeated after its first attempt was recorded (and its
//!   answer lost with the coordinator) is answered `duplicate` with the same job id;
//!   nothing runs twice. A different spec under the same name is refused, not merged.
//! - `CancelJob`: a job already cancelled or finished is answered `already_finished`.
//! - `SignalTask`: the idempotency key makes a repeated signal a duplicate.
//! - `RetryJob`: the retry's name is fixed by the job it retries, so a repeated retry
//!   is answered `duplicate` with the retry already made.
//! - `DescribeJob`, `ListJobs`, `ListWorkers`, `GetJobSpec`, `GetTaskOutput`,
//!   `GetJobResult`, `WatchJob`: reads.

use super::{ClientError, ClientOptions, Jobs};
use crate::backoff::Backoff;
use crate::proto::*;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};
use tonic::{Code, Response, Status, Streaming};

/// A call that failed.
#[derive(Debug)]
pub enum CallError {
    /// No coordinator could be reached.
    Connect(ClientError),
    /// The coordinator at `address` refused the call or the connection to it broke.
    Status {
        /// The coordinator called.
        address: String,
        /// Its answer, or the transport's error.
        status: Status,
    },
}

impl CallError {
    /// The typed refusal the coordinator's status carries (its stable `reason`), if
    /// it answered with one.
    pub fn refusal(&self) -> Option<Refusal> {
        self.status().and_then(crate::status::refusal_of)
    }

    /// The status a coordinator answered with, if it answered.
    pub fn status(&self) -> Option<&Status> {
        match self {
            CallError::Status { status, .. } => Some(status),
            CallError::Connect(_) => None,
        }
    }

    /// The status code a coordinator answered with, if it answered.
    pub fn code(&self) -> Option<Code> {
        self.status().map(Status::code)
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Connect(e) => write!(f, "{e}"),
            CallError::Status { address, status } => match status.source() {
                Some(source) => write!(
                    f,
                    "the connection to the coordinator at {address} failed: {}",
                    innermost(source)
                ),
                None if status.message().is_empty() => {
                    write!(f, "{address}: {:?}", status.code())
                }
                None => f.write_str(status.message()),
            },
        }
    }
}

impl std::error::Error for CallError {}

fn innermost(error: &(dyn StdError + 'static)) -> String {
    let mut last = error;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// A status meaning "this coordinator cannot serve now; another may".
fn moves_on(status: &Status) -> bool {
    status.code() == Code::Unavailable || status.source().is_some()
}

/// A submission's answer and how many attempts it took: a `duplicate` answer after more
/// than one attempt may be this submission's own first attempt, recorded by a
/// coordinator that failed before it answered.
#[derive(Clone, Debug)]
pub struct Submitted {
    /// The coordinator's answer.
    pub response: SubmitJobResponse,
    /// Calls made, counting those failed over from.
    pub attempts: u32,
}

/// A client of the job service that finds the leader among its addresses and, with
/// several, moves to the next leader when one fails.
pub struct Client {
    options: ClientOptions,
    current: Option<(String, Jobs)>,
    /// Addresses seen at the last connection attempt; failover needs more than one.
    addresses: usize,
}

impl Client {
    /// A client that connects on its first call.
    pub fn new(options: ClientOptions) -> Client {
        Client {
            options,
            current: None,
            addresses: 0,
        }
    }

    /// A client connected to the coordinator that leads now.
    pub async fn connect(options: ClientOptions) -> Result<Client, ClientError> {
        let mut client = Client::new(options);
        client.jobs().await?;
        Ok(client)
    }

    /// The options it connects with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// The address of the coordinator in use, if connected.
    pub fn address(&self) -> Option<&str> {
        self.current.as_ref().map(|(a, _)| a.as_str())
    }

    async fn jobs(&mut self) -> Result<(String, Jobs), ClientError> {
        if let Some(current) = &self.current {
            return Ok(current.clone());
        }
        match self.options.connect().await {
            Ok(connection) => {
                self.addresses = connection.addresses;
                let jobs = self.options.jobs_on(&connection)?;
                self.current = Some((connection.address, jobs));
                Ok(self.current.clone().expect("just set"))
            }
            Err(e) => {
                if let ClientError::Unreachable(u) = &e {
                    self.addresses = u.tried.len();
                }
                Err(e)
            }
        }
    }

    /// Runs `call` on the coordinator that leads, again on the next leader while the
    /// failure says another coordinator may serve it. Returns the answer and the
    /// number of attempts.
    pub async fn call<R, F, Fut>(&mut self, mut call: F) -> Result<(R, u32), CallError>
    where
        F: FnMut(Jobs) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let started = Instant::now();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut attempts = 0;
        loop {
            attempts += 1;
            let failure = match self.jobs().await {
                Ok((address, jobs)) => match call(jobs).await {
                    Ok(response) => return Ok((response.into_inner(), attempts)),
                    Err(status) if moves_on(&status) => {
                        self.current = None;
                        CallError::Status { address, status }
                    }
                    Err(status) => return Err(CallError::Status { address, status }),
                },
                Err(e) if e.retryable() => CallError::Connect(e),
                Err(e) => return Err(CallError::Connect(e)),
            };
            let pause = backoff.next_pause();
            if self.addresses < 2 || started.elapsed() + pause > self.options.failover_timeout {
                return Err(failure);
            }
            tracing::warn!(error = %failure, retry_in = ?pause, "coordinator unavailable; looking for the leader");
            tokio::time::sleep(pause).await;
        }
    }

    /// Submits a job; safe to repeat, since a resubmitted spec is answered as a
    /// duplicate.
    pub async fn submit_job(&mut self, spec: JobSpec) -> Result<Submitted, CallError> {
        let (response, attempts) = self
            .call(|mut jobs| {
                let spec = spec.clone();
                async move {
                    let request = SubmitJobRequest { spec: Some(spec) };
                    jobs.submit_job(request).await
                }
            })
            .await?;
        Ok(Submitted { response, attempts })
    }

    /// A job's status and every task of it.
    pub async fn describe_job(&mut self, job: u64) -> Result<DescribeJobResponse, CallError> {
        let call =
            |mut jobs: Jobs| async move { jobs.describe_job(DescribeJobRequest { job }).await };
        Ok(self.call(call).await?.0)
    }

    /// Cancels a job (answered as already finished if it had ended).
    pub async fn cancel_job(&mut self, job: u64) -> Result<CancelJobResponse, CallError> {
        let call = |mut jobs: Jobs| async move { jobs.cancel_job(CancelJobRequest { job }).await };
        Ok(self.call(call).await?.0)
    }

    /// Every job the coordinator holds, with default filters.
    pub async fn list_jobs(&mut self) -> Result<ListJobsResponse, CallError> {
        self.list_jobs_where(ListJobsRequest::default()).await
    }

    /// Jobs matching the request's filters (state, tenant, lane), the newest `limit`.
    pub async fn list_jobs_where(
        &mut self,
        request: ListJobsRequest,
    ) -> Result<ListJobsResponse, CallError> {
        let call = |mut jobs: Jobs| {
            let request = request.clone();
            async move { jobs.list_jobs(request).await }
        };
        Ok(self.call(call).await?.0)
    }

    /// Every worker record the coordinator holds.
    pub async fn list_workers(&mut self) -> Result<ListWorkersResponse, CallError> {
        let call = |mut jobs: Jobs| async move { jobs.list_workers(ListWorkersRequest {}).await };
        Ok(self.call(call).await?.0)
    }

    /// The spec a job was admitted with.
    pub async fn job_spec(&mut self, job: u64) -> Result<JobSpec, CallError> {
        let call =
            |mut jobs: Jobs| async move { jobs.get_job_spec(GetJobSpecRequest { job }).await };
        let (response, _) = self.call(call).await?;
        response.spec.ok_or_else(|| self.missing("spec"))
    }

    /// Retries finished job `job` (the `RetryJob` call). Safe to repeat on another
    /// coordinator: a retry already made is answered again with `duplicate` set.
    pub async fn retry_job(&mut self, job: u64) -> Result<RetryJobResponse, CallError> {
        let call = |mut jobs: Jobs| async move { jobs.retry_job(RetryJobRequest { job }).await };
        Ok(self.call(call).await?.0)
    }

    /// One page of a task's output (the `GetTaskOutput` call).
    pub async fn task_output_page(
        &mut self,
        request: GetTaskOutputRequest,
    ) -> Result<TaskOutput, CallError> {
        let call = |mut jobs: Jobs| {
            let request = request.clone();
            async move { jobs.get_task_output(request).await }
        };
        let (response, _) = self.call(call).await?;
        response.output.ok_or_else(|| self.missing("output"))
    }

    /// A task's whole output, read page by page: the task named by `key` (or by id
    /// when `key` is empty) of job `job`. The returned `TaskOutput` holds all the bytes.
    pub async fn task_output(
        &mut self,
        job: u64,
        key: &str,
        task: u64,
    ) -> Result<TaskOutput, CallError> {
        let request = |offset| GetTaskOutputRequest {
            job,
            key: key.to_string(),
            task: if key.is_empty() { task } else { 0 },
            offset,
            max_bytes: 0,
        };
        let mut whole = self.task_output_page(request(0)).await?;
        while !whole.complete {
            let offset = whole.offset + whole.data.len() as u64;
            let next = self.task_output_page(request(offset)).await?;
            if next.data.is_empty() && !next.complete {
                return Err(self.missing("progress in a page of the output"));
            }
            whole.data.extend_from_slice(&next.data);
            whole.complete = next.complete;
        }
        Ok(whole)
    }

    /// A job's result (the `GetJobResult` call), with every output read whole.
    pub async fn job_result(&mut self, job: u64) -> Result<GetJobResultResponse, CallError> {
        let call =
            |mut jobs: Jobs| async move { jobs.get_job_result(GetJobResultRequest { job }).await };
        let (mut result, _) = self.call(call).await?;
        for t in &mut result.tasks {
            if !t.complete {
                *t = self.task_output(job, "", t.task).await?;
            }
        }
        Ok(result)
    }

    fn missing(&self, what: &str) -> CallError {
        CallError::Status {
            address: self.address().unwrap_or_default().to_string(),
            status: Status::internal(format!("the coordinator sent no {what}")),
        }
    }

    /// Delivers a signal to a suspended task (idempotent by its key).
    pub async fn signal_task(
        &mut self,
        request: SignalTaskRequest,
    ) -> Result<SignalTaskResponse, CallError> {
        let call = |mut jobs: Jobs| {
            let request = request.clone();
            async move { jobs.signal_task(request).await }
        };
        Ok(self.call(call).await?.0)
    }

    /// The job's events from the coordinator that leads. A stream that ends with an
    /// error (the coordinator went away) can be opened again on the next leader; events
    /// between the two are not repeated, so a watcher that must not miss the end also
    /// asks `describe_job`.
    pub async fn watch_job(&mut self, job: u64) -> Result<Streaming<JobEvent>, CallError> {
        self.watch_job_with(WatchJobRequest {
            job,
            ..Default::default()
        })
        .await
    }

    /// `watch_job` with every option of the request, e.g. `include_outputs` for the
    /// outputs of succeeded tasks on their `task_finished` events.
    pub async fn watch_job_with(
        &mut self,
        request: WatchJobRequest,
    ) -> Result<Streaming<JobEvent>, CallError> {
        let call = |mut jobs: Jobs| async move { jobs.watch_job(request).await };
        Ok(self.call(call).await?.0)
    }
}
