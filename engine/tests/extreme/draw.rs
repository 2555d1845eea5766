//! Turning a case into engine inputs: the configuration from its draws, and each step
//! into a command on something the run has seen (the newest instance of a worker, a
//! recent grant, lease, job or suspended task).

use super::{ConfigDraw, Len, Step, Then, U32};
use keel_engine::*;

#[path = "draw_edges.rs"]
mod edges;
#[path = "draw_spec.rs"]
mod spec;

pub(super) const WORKERS: [&str; 4] = ["w0", "w1", "w2", "w3"];
pub(super) const TENANTS: [&str; 5] = ["default", "t1", "t2", "t3", "t4"];
const LANES: [&str; 3] = ["default", "l1", "l2"];
const CAPS: [&str; 3] = ["gpu", "ssd", "arm"];
const RATE_KEYS: [&str; 2] = ["api", "db"];
/// Cron expressions and zones schedules draw: every minute, sparse ones, one that
/// falls in a daylight-saving gap, and invalid ones the engine must refuse.
const CRONS: [(&str, &str); 6] = [
    ("* * * * *", "UTC"),
    ("*/5 * * * *", "Europe/Berlin"),
    ("30 2 * * *", "Europe/Berlin"),
    ("0 0 29 2 *", "UTC"),
    ("61 * * * *", "UTC"),
    ("* * * * *", "Mars/Olympus"),
];
/// How far back a step may pick a grant, lease, job or task.
const RECENT: usize = 8;

pub(super) fn config(d: &ConfigDraw) -> Config {
    let tenant = |i: u8| TENANTS[i as usize % TENANTS.len()].to_string();
    let l: Vec<u32> = d.limits.iter().map(|v| v.get()).collect();
    Config {
        seed: d.seed.get(),
        grant_ttl_ms: d.grant_ttl_ms.get(),
        lease_ttl_ms: d.lease_ttl_ms.get(),
        liveness_timeout_ms: d.liveness_timeout_ms.get(),
        max_losses: d.max_losses.get(),
        retention_ms: d.retention_ms.get(),
        blacklist: BlacklistPolicy {
            threshold: d.blacklist.0.get(),
            window_ms: d.blacklist.1.get(),
            cooldown_ms: d.blacklist.2.get(),
        },
        tenants: TenantPolicy {
            default_cap: d.default_cap.map(|c| c.get()),
            caps: d.caps.iter().map(|(t, c)| (tenant(*t), c.get())).collect(),
            weights: d
                .weights
                .iter()
                .map(|(t, w)| (tenant(*t), w.get()))
                .collect(),
        },
        rates: rates(&d.rates),
        budgets: Default::default(),
        limits: Limits {
            max_tasks_per_job: l[0],
            max_deps_per_task: l[1],
            max_dag_depth: l[2],
            max_payload_bytes: l[3],
            max_caps_per_worker: l[4],
            max_caps_per_task: l[5],
            max_cap_token_len: l[6],
            max_name_len: l[7],
            max_jobs_in_flight_per_tenant: l[8],
            max_workers: l[9],
            max_concurrency_per_worker: l[10],
            max_pending_grants_per_worker: l[11],
            max_lanes_per_worker: l[12],
            max_signals_per_task: l[13],
            max_live_jobs: l[14],
            max_live_tasks: l[15],
            max_tenants: l[16],
            max_stored_bytes: d.max_stored_bytes.get(),
            max_input_bytes_per_task: d.max_stored_bytes.get(),
            max_output_bytes_per_job: d.max_stored_bytes.get(),
            max_stream_bytes_per_job: d.max_stored_bytes.get(),
        },
    }
}

fn rates(draws: &[(u8, u8, U32, U32, U32)]) -> RatePolicy {
    let mut policy = RatePolicy::default();
    for (scope, name, rate, per_ms, burst) in draws {
        let (map, names): (_, &[&str]) = match scope % 3 {
            0 => (&mut policy.tenants, &TENANTS),
            1 => (&mut policy.lanes, &LANES),
            _ => (&mut policy.keys, &RATE_KEYS),
        };
        let rate = Rate {
            rate: rate.get(),
            per_ms: per_ms.get(),
            burst: burst.get(),
        };
        map.insert(names[*name as usize % names.len()].to_string(), rate);
    }
    policy
}

fn subset(items: &[&str], mask: u8) -> Vec<String> {
    (0..items.len())
        .filter(|i| mask >> i & 1 == 1)
        .map(|i| items[i].to_string())
        .collect()
}

fn recent<T: Clone>(items: &[T], i: u8) -> Option<T> {
    let back = i as usize % RECENT;
    (back < items.len()).then(|| items[items.len() - 1 - back].clone())
}

/// What the run has seen, learnt from replies and effects.
pub(super) struct Seen {
    payload_limit: u32,
    /// The newest instance each worker registered with.
    instances: [InstanceId; WORKERS.len()],
    /// Workers told they are lost or unknown; like the SDK, each registers again
    /// before its next command.
    lost: [bool; WORKERS.len()],
    grants: Vec<(GrantId, WorkerId)>,
    leases: Vec<(Fence, WorkerId)>,
    jobs: Vec<JobId>,
    suspended: Vec<(TaskId, String)>,
    /// The leases of tasks that stream from others, and the keys they stream from.
    consumers: Vec<(Fence, WorkerId, Vec<String>)>,
    /// The keys each admitted consumer task streams from.
    edges: std::collections::BTreeMap<TaskId, Vec<String>>,
}

impl Seen {
    pub(super) fn new(payload_limit: u32) -> Seen {
        Seen {
            payload_limit,
            instances: [InstanceId::new(0); WORKERS.len()],
            lost: [true; WORKERS.len()],
            grants: Vec::new(),
            leases: Vec::new(),
            consumers: Vec::new(),
            edges: Default::default(),
            jobs: Vec::new(),
            suspended: Vec::new(),
        }
    }

    fn bytes(&self, len: Len) -> Payload {
        Payload::from(vec![b'x'; len.get(self.payload_limit)])
    }

    fn text(&self, len: Len) -> String {
        "e".repeat(len.get(self.payload_limit))
    }

    fn worker(&self, i: u8) -> (WorkerId, InstanceId) {
        let w = i as usize % WORKERS.len();
        (WorkerId::new(WORKERS[w]), self.instances[w])
    }

    fn index(w: &WorkerId) -> usize {
        WORKERS.iter().position(|n| *n == w.as_str()).unwrap_or(0)
    }

    fn instance_of(&self, w: &WorkerId) -> InstanceId {
        self.instances[Self::index(w)]
    }

    /// A lost worker's registration as its next instance, with ordinary settings.
    fn rejoin(&self, i: usize) -> Input {
        let cmd = WorkerCommand::Register {
            capabilities: subset(&CAPS, i as u8 & 0x07),
            lanes: LANES.iter().map(|l| l.to_string()).collect(),
            max_concurrency: 2,
        };
        let next = InstanceId::new(self.instances[i].get().saturating_add(1));
        Input::worker(&WorkerId::new(WORKERS[i]), next, cmd)
    }

    /// `input`, or the registration its worker owes first.
    fn as_worker(&self, input: Input) -> Input {
        match &input {
            Input::Worker {
                command: WorkerCommand::Register { .. },
                ..
            } => input,
            Input::Worker { worker, .. } if self.lost[Self::index(worker)] => {
                self.rejoin(Self::index(worker))
            }
            _ => input,
        }
    }

    pub(super) fn learn(&mut self, input: &Input, out: &Outputs) {
        if let (Some(Err(r)), Input::Worker { worker, .. }) = (&out.reply, input) {
            if matches!(
                r,
                Rejection::UnknownWorker { .. } | Rejection::WorkerLost { .. }
            ) {
                self.lost[Self::index(worker)] = true;
            }
        }
        match (&out.reply, input) {
            (
                Some(Ok(Accepted::JobSubmitted {
                    job, first_task, ..
                })),
                _,
            ) => {
                self.jobs.push(*job);
                if let Input::Client(ClientCommand::SubmitJob(spec)) = input {
                    self.admitted(*first_task, spec);
                }
            }
            (Some(Ok(Accepted::LeaseStarted { fence, .. })), Input::Worker { worker, .. }) => {
                self.leases.push((*fence, worker.clone()));
                if let Some(keys) = self.edges.get(&fence.task) {
                    self.consumers.push((*fence, worker.clone(), keys.clone()));
                }
            }
            (
                Some(Ok(Accepted::Registered {
                    worker, instance, ..
                })),
                _,
            ) => {
                let i = Self::index(worker);
                self.instances[i] = *instance;
                self.lost[i] = false;
            }
            _ => {}
        }
        for effects in &out.effects {
            match effects {
                Effect::GrantOffered { worker, grant, .. } => {
                    self.grants.push((*grant, worker.clone()))
                }
                Effect::TaskSuspended {
                    task, waitpoint, ..
                } => self.suspended.push((*task, waitpoint.clone())),
                Effect::WorkerLost { worker, instance }
                    if self.instance_of(worker) == *instance =>
                {
                    self.lost[Self::index(worker)] = true
                }
                // A drained worker exits; its next process registers anew.
                Effect::WorkerDrained { worker } => self.lost[Self::index(worker)] = true,
                _ => {}
            }
        }
    }

    /// The next command of a `Take`: the acceptance of the grant its work request was
    /// offered, then `then` on the lease the acceptance started.
    pub(super) fn follow_up(&self, then: &Then, input: &Input, out: &Outputs) -> Option<Input> {
        let Input::Worker {
            worker, command, ..
        } = input
        else {
            return None;
        };
        let inst = self.instance_of(worker);
        match (command, &out.reply) {
            // The offer this request brought, else the newest earlier offer to the
            // worker (a worker holding unaccepted offers has no room for more).
            (WorkerCommand::RequestWork { .. }, _) => {
                let now = out.effects.iter().find_map(|effects| match effects {
                    Effect::GrantOffered {
                        worker: w, grant, ..
                    } if w == worker => Some(*grant),
                    _ => None,
                });
                let earlier = || {
                    let mine = self.grants.iter().rev().find(|(_, w)| w == worker);
                    mine.map(|(g, _)| *g)
                };
                let grant = now.or_else(earlier)?;
                Some(Input::worker(
                    worker,
                    inst,
                    WorkerCommand::AcceptGrant { grant },
                ))
            }
            (WorkerCommand::AcceptGrant { .. }, Some(Ok(Accepted::LeaseStarted { fence, .. }))) => {
                let cmd = self.with_lease(*fence, then)?;
                Some(Input::worker(worker, inst, cmd))
            }
            _ => None,
        }
    }

    fn with_lease(&self, fence: Fence, then: &Then) -> Option<WorkerCommand> {
        Some(match then {
            Then::Hold => return None,
            Then::Complete(output) => WorkerCommand::Complete {
                fence,
                output: self.bytes(*output),
            },
            Then::Fail { permanent, error } => WorkerCommand::Fail {
                fence,
                error: self.text(*error),
                permanent: *permanent,
            },
            Then::Suspend { timeout_ms, resume } => WorkerCommand::Suspend {
                fence,
                waitpoint: "wp".into(),
                timeout_ms: timeout_ms.map(|t| t.get()),
                on_timeout: if *resume {
                    SuspendTimeout::Resume
                } else {
                    SuspendTimeout::Fail
                },
            },
            Then::Report {
                budget,
                dimension,
                amount,
            } => WorkerCommand::ReportUsage {
                fence,
                budget: super::budget_draw::name(*budget),
                dimension: super::budget_draw::dimension(*dimension),
                amount: amount.get(),
                dedup_key: "k0".into(),
            },
        })
    }

    fn fenced(&self, lease: u8, cmd: impl FnOnce(Fence) -> Option<WorkerCommand>) -> Option<Input> {
        let (fence, w) = recent(&self.leases, lease)?;
        Some(Input::worker(&w, self.instance_of(&w), cmd(fence)?))
    }

    pub(super) fn input(&self, step: &Step) -> Option<Input> {
        self.command(step).map(|input| self.as_worker(input))
    }

    fn command(&self, step: &Step) -> Option<Input> {
        let worker = |i: u8, cmd| {
            let (w, inst) = self.worker(i);
            Some(Input::worker(&w, inst, cmd))
        };
        match step {
            Step::Register {
                worker,
                instance,
                caps,
                lanes,
                max_concurrency,
            } => {
                let cmd = WorkerCommand::Register {
                    capabilities: subset(&CAPS, *caps),
                    lanes: subset(&LANES, *lanes),
                    max_concurrency: max_concurrency.get(),
                };
                let i = *worker as usize % WORKERS.len();
                let next = self.instances[i].get().saturating_add(1);
                let instance = instance.map_or(next, |v| v.get());
                Some(Input::worker(
                    &WorkerId::new(WORKERS[i]),
                    InstanceId::new(instance),
                    cmd,
                ))
            }
            Step::Heartbeat { worker: i } => worker(*i, WorkerCommand::Heartbeat),
            Step::RequestWork { worker: i, credits } => worker(
                *i,
                WorkerCommand::RequestWork {
                    credits: credits.get(),
                },
            ),
            Step::Take { worker: i, .. } => worker(*i, WorkerCommand::RequestWork { credits: 1 }),
            Step::Drain { worker: i } => worker(*i, WorkerCommand::Drain),
            Step::Deregister { worker: i } => worker(*i, WorkerCommand::Deregister),
            Step::Accept { grant } | Step::Release { grant } => {
                let (grant, w) = recent(&self.grants, *grant)?;
                let cmd = match step {
                    Step::Accept { .. } => WorkerCommand::AcceptGrant { grant },
                    _ => WorkerCommand::ReleaseGrant { grant },
                };
                Some(Input::worker(&w, self.instance_of(&w), cmd))
            }
            Step::Renew { lease } | Step::Complete { lease, .. } | Step::Fail { lease, .. } => {
                self.fenced(*lease, |fence| self.on_lease(fence, step))
            }
            Step::Suspend { lease, .. } => self.fenced(*lease, |fence| self.on_lease(fence, step)),
            Step::Emit {
                lease,
                from,
                frames,
            } => self.fenced(*lease, |fence| {
                Some(WorkerCommand::Emit {
                    fence,
                    from: from.get(),
                    frames: frames.iter().map(|l| self.bytes(*l)).collect(),
                })
            }),
            Step::Signal { task, key, payload } => {
                let (task, waitpoint) = recent(&self.suspended, *task)?;
                Some(Input::Client(ClientCommand::Signal {
                    task,
                    waitpoint,
                    idempotency_key: format!("k{}", key % 3),
                    payload: self.bytes(*payload),
                }))
            }
            Step::Submit(job) => Some(Input::Client(ClientCommand::SubmitJob(self.job(job)))),
            Step::SubmitBudgeted { job, budgets } => {
                let mut spec = self.job(job);
                spec.budgets = super::budget_draw::specs(budgets);
                Some(Input::Client(ClientCommand::SubmitJob(spec)))
            }
            Step::ReportUsage {
                lease,
                budget,
                dimension,
                amount,
                key,
            } => self.fenced(*lease, |fence| {
                Some(WorkerCommand::ReportUsage {
                    fence,
                    budget: super::budget_draw::name(*budget),
                    dimension: super::budget_draw::dimension(*dimension),
                    amount: amount.get(),
                    dedup_key: format!("k{}", key % 4),
                })
            }),
            Step::TenantBudgets { .. } | Step::ReadEdge { .. } => None,
            Step::SubmitStreaming { job, edges } => Some(Input::Client(ClientCommand::SubmitJob(
                self.streaming(job, edges),
            ))),
            Step::Ack {
                lease,
                from,
                cursor,
            } => {
                let (fence, w, from) = self.edge_of(*lease, *from)?;
                let ack = WorkerCommand::Ack {
                    fence,
                    from,
                    cursor: cursor.get(),
                };
                Some(Input::worker(&w, self.instance_of(&w), ack))
            }
            Step::Cancel { job } => {
                let job = recent(&self.jobs, *job)?;
                Some(Input::Client(ClientCommand::CancelJob { job }))
            }
            Step::AddSchedule { .. } => Some(self.add_schedule(step)),
            Step::ChangeSchedule { name, change } => {
                let name = format!("s{}", name % 3);
                let cmd = match change % 3 {
                    0 => ScheduleCommand::Pause { name },
                    1 => ScheduleCommand::Resume { name },
                    _ => ScheduleCommand::Delete { name },
                };
                Some(Input::Client(ClientCommand::Schedule(cmd)))
            }
            Step::Advance { .. } | Step::SetClock { .. } | Step::Restart | Step::Corrupt { .. } => {
                None
            }
        }
    }

    /// The command of a fenced step on the lease `fence`.
    fn on_lease(&self, fence: Fence, step: &Step) -> Option<WorkerCommand> {
        let then = match step {
            Step::Renew { .. } => return Some(WorkerCommand::Renew { fence }),
            Step::Complete { output, .. } => Then::Complete(*output),
            Step::Fail {
                permanent, error, ..
            } => Then::Fail {
                permanent: *permanent,
                error: *error,
            },
            Step::Suspend {
                timeout_ms, resume, ..
            } => Then::Suspend {
                timeout_ms: *timeout_ms,
                resume: *resume,
            },
            _ => return None,
        };
        self.with_lease(fence, &then)
    }
}
