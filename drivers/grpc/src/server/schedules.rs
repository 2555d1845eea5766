//! `JobService`'s schedule calls: each is one engine command (logged, so a schedule
//! survives a restart and a takeover) or one read.

use super::jobs::{unexpected, JobSvc};
use crate::auth::require_client;
use crate::proto::*;
use crate::schedule_spec::{schedule_from_proto, schedule_view_to_proto};
use keel_engine::{Accepted, ClientCommand, ScheduleCommand};
use tonic::{Request, Response, Status};
use tracing::Instrument;

impl JobSvc {
    async fn schedule_command(&self, cmd: ScheduleCommand) -> Result<ScheduleResponse, Status> {
        let span = tracing::info_span!("schedule", command = ?std::mem::discriminant(&cmd));
        match self
            .apply(ClientCommand::Schedule(cmd))
            .instrument(span)
            .await?
        {
            Accepted::ScheduleUpdated {
                name,
                next_due,
                duplicate,
            } => Ok(ScheduleResponse {
                name,
                next_due_ms: next_due,
                duplicate,
            }),
            other => Err(unexpected(other)),
        }
    }

    pub(super) async fn add_schedule_call(
        &self,
        request: Request<AddScheduleRequest>,
    ) -> Result<Response<ScheduleResponse>, Status> {
        require_client(&request)?;
        let spec = schedule_from_proto(request.into_inner())?;
        let reply = self
            .schedule_command(ScheduleCommand::Add(Box::new(spec)))
            .await?;
        Ok(Response::new(reply))
    }

    /// Pause, resume or delete, by `make`.
    pub(super) async fn named_schedule_call(
        &self,
        request: Request<ScheduleNameRequest>,
        make: fn(String) -> ScheduleCommand,
    ) -> Result<Response<ScheduleResponse>, Status> {
        require_client(&request)?;
        let name = request.into_inner().name;
        let reply = self.schedule_command(make(name)).await?;
        Ok(Response::new(reply))
    }

    /// A read: any token may list, as any may list jobs.
    pub(super) async fn list_schedules_call(
        &self,
        _request: Request<ListSchedulesRequest>,
    ) -> Result<Response<ListSchedulesResponse>, Status> {
        let schedules = self
            .read(|e| e.schedules().iter().map(schedule_view_to_proto).collect())
            .await?;
        Ok(Response::new(ListSchedulesResponse { schedules }))
    }
}
