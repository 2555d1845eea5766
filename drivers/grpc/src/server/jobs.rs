//! The client service: submit, cancel, describe, list and watch jobs, list workers,
//! and signal suspended tasks.

use super::listing::{self, JobQuery};
use super::slots::Slot;
use super::watch_outputs::WatchOutputs;
use super::{results, unavailable, Shared};
use crate::auth::require_client;
use crate::convert::{job_event, job_view_to_proto};
use crate::job_spec::{job_spec_from_proto, job_spec_to_proto};
use crate::proto::job_service_server::JobService;
use crate::proto::*;
use crate::status::{rejection_status, retry_status};
use crate::validate::{self, invalid};
use keel_engine::{Accepted, ClientCommand, Effect, Input, JobId, Rejection, ScheduleCommand};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::Instrument;

pub(crate) struct JobSvc(pub Arc<Shared>);

impl JobSvc {
    pub(super) async fn apply(&self, command: ClientCommand) -> Result<Accepted, Status> {
        match self.0.handle.apply(Input::Client(command)).await {
            Ok(Some(Ok(accepted))) => Ok(accepted),
            Ok(Some(Err(rejection))) => Err(rejection_status(&rejection)),
            Ok(None) => Err(Status::internal("the command got no reply")),
            Err(e) => Err(unavailable(&e)),
        }
    }

    pub(super) async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&keel_engine::Engine) -> R + Send + 'static,
    ) -> Result<R, Status> {
        self.0.handle.read(f).await.map_err(|e| unavailable(&e))
    }
}

impl JobSvc {
    /// Output bytes that fit one reply beside its other fields.
    fn room(&self) -> u64 {
        super::room(&self.0)
    }
}

pub(super) fn unexpected(a: Accepted) -> Status {
    Status::internal(format!("unexpected reply {a:?}"))
}

#[tonic::async_trait]
impl JobService for JobSvc {
    async fn submit_job(
        &self,
        request: Request<SubmitJobRequest>,
    ) -> Result<Response<SubmitJobResponse>, Status> {
        require_client(&request)?;
        let spec = request
            .into_inner()
            .spec
            .ok_or_else(|| invalid("spec", "is required"))?;
        let spec = job_spec_from_proto(spec)?;
        let span = tracing::info_span!("submit_job", name = %spec.name, tasks = spec.tasks.len());
        match self
            .apply(ClientCommand::SubmitJob(spec))
            .instrument(span)
            .await?
        {
            Accepted::JobSubmitted {
                job,
                first_task,
                tasks,
                duplicate,
            } => Ok(Response::new(SubmitJobResponse {
                job: job.get(),
                first_task: first_task.get(),
                tasks,
                duplicate,
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn cancel_job(
        &self,
        request: Request<CancelJobRequest>,
    ) -> Result<Response<CancelJobResponse>, Status> {
        require_client(&request)?;
        let job = JobId::new(request.into_inner().job);
        let span = tracing::info_span!("cancel_job", %job);
        match self
            .apply(ClientCommand::CancelJob { job })
            .instrument(span)
            .await?
        {
            Accepted::JobCancelled {
                already_finished, ..
            } => Ok(Response::new(CancelJobResponse { already_finished })),
            other => Err(unexpected(other)),
        }
    }

    async fn signal_task(
        &self,
        request: Request<SignalTaskRequest>,
    ) -> Result<Response<SignalTaskResponse>, Status> {
        require_client(&request)?;
        let signal = validate::signal(request.into_inner(), &self.0.config.limits)?;
        let (job, task) = (signal.job, signal.task);
        // A task's job never changes, so this look stays true until the signal lands.
        let owner = self
            .read(move |e| e.describe_task(task).map(|t| t.job))
            .await?
            .map_err(|r| rejection_status(&r))?;
        if owner != job {
            return Err(Status::not_found(format!(
                "unknown_task: task {task} is not in job {job}"
            )));
        }
        let span = tracing::info_span!("signal_task", %job, %task);
        match self.apply(signal.command).instrument(span).await? {
            Accepted::Signalled {
                resumed, duplicate, ..
            } => Ok(Response::new(SignalTaskResponse { resumed, duplicate })),
            other => Err(unexpected(other)),
        }
    }

    async fn describe_job(
        &self,
        request: Request<DescribeJobRequest>,
    ) -> Result<Response<DescribeJobResponse>, Status> {
        let job = JobId::new(request.into_inner().job);
        let view = self
            .read(move |e| e.describe_job(job))
            .instrument(tracing::debug_span!("describe_job", %job))
            .await?
            .map_err(|r| rejection_status(&r))?;
        let mut reply = job_view_to_proto(&view);
        for task in &mut reply.tasks {
            if let Some(report) =
                self.0
                    .progress
                    .latest(keel_engine::TaskId::new(task.id), task.attempt, task.epoch)
            {
                task.progress_per_mille = Some(report.per_mille);
                task.progress_message = report.message;
            }
        }
        Ok(Response::new(reply))
    }

    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        let query = JobQuery::parse(request.into_inner())?;
        Ok(Response::new(self.read(move |e| query.run(e)).await?))
    }

    async fn list_workers(
        &self,
        _request: Request<ListWorkersRequest>,
    ) -> Result<Response<ListWorkersResponse>, Status> {
        let workers = self.read(listing::workers).await?;
        Ok(Response::new(ListWorkersResponse { workers }))
    }

    async fn get_job_spec(
        &self,
        request: Request<GetJobSpecRequest>,
    ) -> Result<Response<GetJobSpecResponse>, Status> {
        let job = JobId::new(request.into_inner().job);
        let spec = self
            .read(move |e| e.job_spec(job))
            .await?
            .map_err(|r| rejection_status(&r))?;
        Ok(Response::new(GetJobSpecResponse {
            spec: Some(job_spec_to_proto(&spec)),
        }))
    }

    async fn retry_job(
        &self,
        request: Request<RetryJobRequest>,
    ) -> Result<Response<RetryJobResponse>, Status> {
        require_client(&request)?;
        let job = JobId::new(request.into_inner().job);
        let span = tracing::info_span!("retry_job", %job);
        let retried = self
            .0
            .handle
            .retry_job(job)
            .instrument(span)
            .await
            .map_err(|e| retry_status(&e))?;
        Ok(Response::new(RetryJobResponse {
            job: retried.job.get(),
            first_task: retried.first_task.get(),
            tasks: retried.tasks,
            duplicate: retried.duplicate,
            spec: Some(job_spec_to_proto(&retried.spec)),
        }))
    }

    async fn get_task_output(
        &self,
        request: Request<GetTaskOutputRequest>,
    ) -> Result<Response<GetTaskOutputResponse>, Status> {
        let r = request.into_inner();
        let room = self.room();
        let output = self
            .read(move |e| results::task_output(e, &r, room))
            .await??;
        Ok(Response::new(GetTaskOutputResponse {
            output: Some(output),
        }))
    }

    async fn read_stream(
        &self,
        request: Request<ReadStreamRequest>,
    ) -> Result<Response<ReadStreamResponse>, Status> {
        let r = request.into_inner();
        let room = self.room();
        let page = self
            .read(move |e| super::streams::read_stream(e, &r, room))
            .await??;
        Ok(Response::new(page))
    }

    type TailStreamStream = super::tail::Pages<crate::proto::ReadStreamResponse>;

    async fn tail_stream(
        &self,
        request: Request<TailStreamRequest>,
    ) -> Result<Response<Self::TailStreamStream>, Status> {
        let pages = super::tail::open(self.0.clone(), request.into_inner(), self.room()).await?;
        Ok(Response::new(pages))
    }

    async fn get_job_result(
        &self,
        request: Request<GetJobResultRequest>,
    ) -> Result<Response<GetJobResultResponse>, Status> {
        let job = JobId::new(request.into_inner().job);
        let room = self.room();
        let reply = self
            .read(move |e| e.job_result(job).map(|r| results::job_result(&r, room)))
            .await?
            .map_err(|r| rejection_status(&r))?;
        Ok(Response::new(reply))
    }

    async fn add_schedule(
        &self,
        request: Request<AddScheduleRequest>,
    ) -> Result<Response<ScheduleResponse>, Status> {
        self.add_schedule_call(request).await
    }

    async fn list_schedules(
        &self,
        request: Request<ListSchedulesRequest>,
    ) -> Result<Response<ListSchedulesResponse>, Status> {
        self.list_schedules_call(request).await
    }

    async fn pause_schedule(
        &self,
        request: Request<ScheduleNameRequest>,
    ) -> Result<Response<ScheduleResponse>, Status> {
        self.named_schedule_call(request, |name| ScheduleCommand::Pause { name })
            .await
    }

    async fn resume_schedule(
        &self,
        request: Request<ScheduleNameRequest>,
    ) -> Result<Response<ScheduleResponse>, Status> {
        self.named_schedule_call(request, |name| ScheduleCommand::Resume { name })
            .await
    }

    async fn delete_schedule(
        &self,
        request: Request<ScheduleNameRequest>,
    ) -> Result<Response<ScheduleResponse>, Status> {
        self.named_schedule_call(request, |name| ScheduleCommand::Delete { name })
            .await
    }

    async fn list_budgets(
        &self,
        request: Request<ListBudgetsRequest>,
    ) -> Result<Response<ListBudgetsResponse>, Status> {
        self.list_budgets_call(request).await
    }

    async fn hello(
        &self,
        _request: Request<HelloRequest>,
    ) -> Result<Response<HelloResponse>, Status> {
        let handle = &self.0.handle;
        Ok(Response::new(HelloResponse {
            leading: handle.is_leader() && !self.0.stopping.is_cancelled(),
            epoch: handle.epoch(),
            max_message_bytes: self.0.options.max_message_bytes as u64,
        }))
    }

    type WatchJobStream = ReceiverStream<Result<JobEvent, Status>>;

    async fn watch_job(
        &self,
        request: Request<WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let slot = self.0.slots.watch().inspect_err(|_| {
            self.0
                .metrics
                .limit_refusals
                .fetch_add(1, Ordering::Relaxed);
        })?;
        let request = request.into_inner();
        let job = JobId::new(request.job);
        let outputs = request.include_outputs.then(|| WatchOutputs {
            handle: self.0.handle.clone(),
            cap: self
                .0
                .options
                .max_watch_output_bytes
                .min(self.room() as usize),
        });
        // Subscribe before looking, so nothing between the look and the stream is missed.
        let effects = self.0.handle.watch_job(job);
        let progress = self.0.progress.subscribe();
        let status = self
            .read(move |e| e.describe_job(job).map(|v| v.status))
            .await?
            .map_err(|r: Rejection| rejection_status(&r))?;
        let (tx, rx) = mpsc::channel(256);
        if let Some(outcome) = status.outcome {
            let event = job_event(&Effect::JobFinished { job, outcome });
            let _ = tx.send(Ok(event.unwrap_or_default())).await;
            return Ok(Response::new(ReceiverStream::new(rx)));
        }
        let watch = Watch {
            job,
            outputs,
            stopping: self.0.stopping.clone(),
            _slot: slot,
        };
        tokio::spawn(
            watch
                .forward(effects, progress, tx)
                .instrument(tracing::debug_span!("watch_job", %job)),
        );
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// One open watch, holding its slot against `max_watches` until it ends.
struct Watch {
    job: JobId,
    /// Set when the watcher asked for outputs on task completion.
    outputs: Option<WatchOutputs>,
    stopping: CancellationToken,
    _slot: Slot,
}

impl Watch {
    /// Sends a job's events until it finishes, the watcher leaves, the coordinator closes
    /// the watch or the server stops. A watcher that fell behind is told how many events
    /// it missed.
    async fn forward(
        self,
        mut effects: broadcast::Receiver<Effect>,
        mut progress: broadcast::Receiver<JobEvent>,
        tx: mpsc::Sender<Result<JobEvent, Status>>,
    ) {
        let job = self.job;
        loop {
            let event = tokio::select! {
                _ = tx.closed() => break,
                _ = self.stopping.cancelled() => {
                    let _ = tx.try_send(Err(Status::unavailable("stopping: the coordinator is shutting down")));
                    break;
                }
                effect = effects.recv() => match effect {
                    Ok(effect) => job_event(&effect),
                    Err(broadcast::error::RecvError::Lagged(n)) => Some(JobEvent {
                        job: job.get(),
                        kind: "lagged".into(),
                        detail: format!("{n} events missed"),
                        ..Default::default()
                    }),
                    Err(broadcast::error::RecvError::Closed) => {
                        let gone = Status::unavailable("not_leader: the coordinator stopped serving this job's events");
                        let _ = tx.try_send(Err(gone));
                        break;
                    }
                },
                report = progress.recv() => match report {
                    Ok(report) if report.job == job.get() => Some(report),
                    _ => None,
                },
            };
            let Some(mut event) = event else { continue };
            if let Some(outputs) = &self.outputs {
                outputs.attach(&mut event).await;
            }
            let finished = event.kind == "job_finished";
            let sent = tokio::select! {
                sent = tx.send(Ok(event)) => sent.is_ok(),
                _ = self.stopping.cancelled() => false,
            };
            if !sent || finished {
                break;
            }
        }
    }
}
