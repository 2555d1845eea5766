//! The schedule calls of [`Client`], and the budget listing beside them. Each is safe to make twice: adding the same spec
//! again is answered `duplicate`, as are pausing a paused schedule and resuming a
//! running one; deleting twice answers the second `unknown_schedule`.

use super::failover::{CallError, Client};
use super::Jobs;
use crate::proto::*;

impl Client {
    /// Stores a recurring job.
    pub async fn add_schedule(
        &mut self,
        request: AddScheduleRequest,
    ) -> Result<ScheduleResponse, CallError> {
        let call = |mut jobs: Jobs| {
            let request = request.clone();
            async move { jobs.add_schedule(request).await }
        };
        Ok(self.call(call).await?.0)
    }

    /// Every schedule, in name order.
    pub async fn list_schedules(&mut self) -> Result<ListSchedulesResponse, CallError> {
        let call =
            |mut jobs: Jobs| async move { jobs.list_schedules(ListSchedulesRequest {}).await };
        Ok(self.call(call).await?.0)
    }

    /// Every budget: tenant budgets, then the budgets of held jobs.
    pub async fn list_budgets(&mut self) -> Result<ListBudgetsResponse, CallError> {
        let call = |mut jobs: Jobs| async move { jobs.list_budgets(ListBudgetsRequest {}).await };
        Ok(self.call(call).await?.0)
    }

    /// Pauses, resumes or deletes a schedule.
    pub async fn change_schedule(
        &mut self,
        change: ScheduleChange,
        name: &str,
    ) -> Result<ScheduleResponse, CallError> {
        let call = |mut jobs: Jobs| {
            let request = ScheduleNameRequest {
                name: name.to_string(),
            };
            async move {
                match change {
                    ScheduleChange::Pause => jobs.pause_schedule(request).await,
                    ScheduleChange::Resume => jobs.resume_schedule(request).await,
                    ScheduleChange::Delete => jobs.delete_schedule(request).await,
                }
            }
        };
        Ok(self.call(call).await?.0)
    }
}

/// What [`Client::change_schedule`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleChange {
    /// Stop firing.
    Pause,
    /// Fire again from the next due time.
    Resume,
    /// Forget the schedule.
    Delete,
}
