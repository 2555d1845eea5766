//! The listing reads of the client service: jobs filtered by state, tenant and lane
//! (newest `limit` of them), and workers with the tasks they run. Both run inside one
//! engine read, so what they report is one consistent, durable state.

use crate::convert::job_status_to_proto;
use crate::proto::{LeaseInfo, ListJobsRequest, ListJobsResponse, TaskStateCount, WorkerInfo};
use crate::validate::invalid;
use keel_engine::{Engine, JobStatus};
use tonic::Status;

/// A job state a listing may filter on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StateFilter {
    Running,
    Finished,
    Outcome(&'static str),
}

/// The words `ListJobsRequest.state` accepts.
pub(super) const JOB_STATES: [&str; 6] = [
    "running",
    "finished",
    "succeeded",
    "failed",
    "cancelled",
    "deadline_exceeded",
];

impl StateFilter {
    fn parse(word: &str) -> Result<StateFilter, Status> {
        match word {
            "running" => Ok(StateFilter::Running),
            "finished" => Ok(StateFilter::Finished),
            _ => JOB_STATES[2..]
                .iter()
                .find(|s| **s == word)
                .map(|s| StateFilter::Outcome(s))
                .ok_or_else(|| {
                    invalid(
                        "state",
                        &format!("must be one of {}", JOB_STATES.join(", ")),
                    )
                }),
        }
    }

    fn admits(self, job: &JobStatus) -> bool {
        match (self, job.outcome) {
            (StateFilter::Running, outcome) => outcome.is_none(),
            (StateFilter::Finished, outcome) => outcome.is_some(),
            (StateFilter::Outcome(word), Some(o)) => o.label() == word,
            (StateFilter::Outcome(_), None) => false,
        }
    }
}

/// A checked `ListJobsRequest`, ready to run inside an engine read.
pub(crate) struct JobQuery {
    state: Option<StateFilter>,
    tenant: Option<String>,
    lane: Option<String>,
    limit: Option<usize>,
    task_states: bool,
}

impl JobQuery {
    pub(super) fn parse(request: ListJobsRequest) -> Result<JobQuery, Status> {
        Ok(JobQuery {
            state: request
                .state
                .as_deref()
                .map(StateFilter::parse)
                .transpose()?,
            tenant: request.tenant,
            lane: request.lane,
            limit: request.limit.filter(|n| *n > 0).map(|n| n as usize),
            task_states: request.task_states,
        })
    }

    fn admits(&self, job: &JobStatus) -> bool {
        self.state.is_none_or(|s| s.admits(job))
            && self.tenant.as_ref().is_none_or(|t| *t == job.tenant)
            && self.lane.as_ref().is_none_or(|l| *l == job.lane)
    }

    /// The matching jobs, in id order, the newest `limit` of them.
    pub(super) fn run(&self, engine: &Engine) -> ListJobsResponse {
        let mut matching: Vec<JobStatus> = engine
            .jobs()
            .into_iter()
            .filter(|j| self.admits(j))
            .collect();
        let matched = matching.len();
        if let Some(limit) = self.limit {
            matching.drain(..matched.saturating_sub(limit));
        }
        let jobs = matching
            .iter()
            .map(|j| {
                let mut status = job_status_to_proto(j);
                if self.task_states {
                    status.task_states = engine
                        .task_counts(j.id)
                        .unwrap_or_default()
                        .labelled()
                        .into_iter()
                        .filter(|(_, count)| *count > 0)
                        .map(|(state, count)| TaskStateCount {
                            state: state.to_string(),
                            count,
                        })
                        .collect();
                }
                status
            })
            .collect();
        ListJobsResponse {
            jobs,
            matched: u32::try_from(matched).unwrap_or(u32::MAX),
        }
    }
}

/// Every worker the engine keeps, each with the tasks it runs (job, key, attempt and
/// when the attempt started).
pub(crate) fn workers(engine: &Engine) -> Vec<WorkerInfo> {
    engine
        .workers()
        .into_iter()
        .map(|w| WorkerInfo {
            leases: w
                .leases
                .iter()
                .filter_map(|t| engine.describe_task(*t).ok())
                .map(|t| LeaseInfo {
                    job: t.job.get(),
                    task: t.id.get(),
                    key: t.key,
                    attempt: t.attempt,
                    started_at_ms: t.attempts.last().map_or(0, |a| a.started_at),
                })
                .collect(),
            id: w.id.into_string(),
            instance: w.instance.get(),
            capabilities: w.capabilities,
            lanes: w.lanes,
            max_concurrency: w.max_concurrency,
            status: w.status,
            grants: w.grants,
            credits: w.credits,
            blacklisted_until_ms: w.blacklisted_until,
            last_seen_ms: w.last_seen,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::{
        ClientCommand, Config, Input, InstanceId, JobSpec, TaskSpec, WorkerCommand, WorkerId,
    };

    fn engine_with_jobs() -> Engine {
        let mut e = Engine::new(Config::default());
        for (i, (tenant, lane)) in [("a", "x"), ("b", "x"), ("a", "y"), ("a", "x")]
            .into_iter()
            .enumerate()
        {
            let mut spec = JobSpec::new(format!("j{i}"), vec![TaskSpec::new("t")]);
            spec.tenant = tenant.into();
            spec.lane = lane.into();
            e.apply(0, Input::Client(ClientCommand::SubmitJob(spec)));
        }
        e.apply(
            1,
            Input::Client(ClientCommand::CancelJob {
                job: keel_engine::JobId::new(2),
            }),
        );
        e
    }

    fn ids(query: ListJobsRequest, e: &Engine) -> (Vec<u64>, u32) {
        let r = JobQuery::parse(query).unwrap().run(e);
        (r.jobs.iter().map(|j| j.id).collect(), r.matched)
    }

    #[test]
    fn jobs_are_filtered_and_the_newest_kept() {
        let e = engine_with_jobs();
        let all = ListJobsRequest::default();
        assert_eq!(ids(all.clone(), &e), (vec![1, 2, 3, 4], 4));
        let tenant_a = ListJobsRequest {
            tenant: Some("a".into()),
            ..all.clone()
        };
        assert_eq!(ids(tenant_a.clone(), &e), (vec![1, 3, 4], 3));
        let newest = ListJobsRequest {
            limit: Some(2),
            ..tenant_a
        };
        assert_eq!(ids(newest, &e), (vec![3, 4], 3));
        let lane_x_running = ListJobsRequest {
            lane: Some("x".into()),
            state: Some("running".into()),
            ..all.clone()
        };
        assert_eq!(ids(lane_x_running, &e), (vec![1, 4], 2));
        let cancelled = ListJobsRequest {
            state: Some("cancelled".into()),
            ..all.clone()
        };
        assert_eq!(ids(cancelled.clone(), &e), (vec![2], 1));
        let finished = ListJobsRequest {
            state: Some("finished".into()),
            ..all.clone()
        };
        assert_eq!(ids(finished, &e), (vec![2], 1));
        let zero = ListJobsRequest {
            limit: Some(0),
            ..all
        };
        assert_eq!(ids(zero, &e).0.len(), 4, "a limit of 0 means none");
    }

    #[test]
    fn an_unknown_state_is_refused_naming_the_words() {
        let bad = ListJobsRequest {
            state: Some("done".into()),
            ..Default::default()
        };
        let Err(status) = JobQuery::parse(bad) else {
            panic!("accepted");
        };
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("deadline_exceeded"), "{status:?}");
    }

    #[test]
    fn task_states_are_counted_on_request() {
        let e = engine_with_jobs();
        let request = ListJobsRequest {
            task_states: true,
            ..Default::default()
        };
        let r = JobQuery::parse(request).unwrap().run(&e);
        let counts = |i: usize| -> Vec<(String, u32)> {
            r.jobs[i]
                .task_states
                .iter()
                .map(|c| (c.state.clone(), c.count))
                .collect()
        };
        assert_eq!(counts(0), vec![("queued".to_string(), 1)]);
        assert_eq!(counts(1), vec![("cancelled".to_string(), 1)]);
        let plain = JobQuery::parse(ListJobsRequest::default()).unwrap().run(&e);
        assert!(plain.jobs[0].task_states.is_empty());
    }

    #[test]
    fn workers_list_their_leases_by_job_and_key() {
        let mut e = engine_with_jobs();
        let w = WorkerId::new("w1");
        let register = WorkerCommand::Register {
            capabilities: vec!["gpu".into()],
            lanes: vec!["x".into()],
            max_concurrency: 2,
        };
        e.apply(5, Input::worker(&w, InstanceId::new(3), register));
        let out = e.apply(
            6,
            Input::worker(
                &w,
                InstanceId::new(3),
                WorkerCommand::RequestWork { credits: 1 },
            ),
        );
        let grant = out
            .effects
            .iter()
            .find_map(|effects| match effects {
                keel_engine::Effect::GrantOffered { grant, .. } => Some(*grant),
                _ => None,
            })
            .unwrap();
        e.apply(
            7,
            Input::worker(&w, InstanceId::new(3), WorkerCommand::AcceptGrant { grant }),
        );
        let listed = workers(&e);
        assert_eq!(listed.len(), 1);
        let info = &listed[0];
        assert_eq!((info.id.as_str(), info.instance), ("w1", 3));
        assert_eq!(info.lanes, vec!["x".to_string()]);
        assert_eq!(info.capabilities, vec!["gpu".to_string()]);
        assert_eq!((info.status.as_str(), info.last_seen_ms), ("active", 7));
        assert_eq!(info.leases.len(), 1);
        let lease = &info.leases[0];
        assert_eq!((lease.job, lease.key.as_str(), lease.attempt), (1, "t", 1));
        assert_eq!(lease.started_at_ms, 7);
    }
}
