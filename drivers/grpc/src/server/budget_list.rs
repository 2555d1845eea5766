//! `JobService.ListBudgets`: a read of every budget with its use, answered from the
//! engine's state without the log.

use super::jobs::JobSvc;
use crate::budget_spec::budget_view_to_proto;
use crate::proto::*;
use keel_engine::BudgetOwner;
use tonic::{Request, Response, Status};

impl JobSvc {
    /// A read: any token may list (a worker's too), as any may list jobs; it changes
    /// nothing.
    pub(super) async fn list_budgets_call(
        &self,
        _request: Request<ListBudgetsRequest>,
    ) -> Result<Response<ListBudgetsResponse>, Status> {
        let budgets = self
            .read(|e| {
                e.budgets()
                    .iter()
                    .map(|v| {
                        let job_name = match &v.owner {
                            BudgetOwner::Job(j) => {
                                e.job_status(*j).map(|s| s.name).unwrap_or_default()
                            }
                            BudgetOwner::Tenant(_) => String::new(),
                        };
                        budget_view_to_proto(v, job_name)
                    })
                    .collect()
            })
            .await?;
        Ok(Response::new(ListBudgetsResponse { budgets }))
    }
}
