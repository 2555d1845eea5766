//! A worker registered with the lane `*` alone serves every lane, including lanes first
//! used after it registered, taking lanes with ready tasks in turn; a worker naming
//! several lanes takes those in turn too.
use keel_engine::*;
use keel_engine_harness::*;

fn register(h: &mut Harness, w: &str, lanes: &[&str]) -> Result<Accepted, Rejection> {
    let cmd = WorkerCommand::Register {
        capabilities: vec![],
        lanes: lanes.iter().map(|l| l.to_string()).collect(),
        max_concurrency: 8,
    };
    h.worker(w, 1, cmd).reply.expect("a reply")
}

fn in_lane(name: &str, lane: &str, keys: &[&str]) -> JobSpec {
    let mut spec = job(name, keys);
    spec.lane = lane.into();
    spec
}

#[test]
fn an_all_lanes_worker_serves_lanes_it_never_named() {
    let mut h = Harness::new(config());
    register(&mut h, "any", &[ALL_LANES]).unwrap();
    let (batch, _) = h.submit(in_lane("b", "batch", &["b1"])).unwrap();
    let (def, _) = h.submit(job("d", &["d1"])).unwrap();
    // A lane that did not exist when the worker registered.
    let (late, _) = h.submit(in_lane("l", "later", &["l1"])).unwrap();
    let grants = h.request("any", 1, 8);
    let mut jobs: Vec<JobId> = grants.iter().map(|(_, t)| h.task(*t).job).collect();
    jobs.sort();
    assert_eq!(jobs, vec![batch, def, late]);
    assert_eq!(h.engine.workers()[0].lanes, vec![ALL_LANES.to_string()]);
    h.check_replay();
}

#[test]
fn an_all_lanes_worker_takes_lanes_in_turn() {
    let mut h = Harness::new(config());
    register(&mut h, "any", &[ALL_LANES]).unwrap();
    let (a, _) = h
        .submit(in_lane("a", "alpha", &["a1", "a2", "a3"]))
        .unwrap();
    let (b, _) = h.submit(in_lane("b", "beta", &["b1", "b2", "b3"])).unwrap();
    let mut order = Vec::new();
    for _ in 0..4 {
        let g = h.request("any", 1, 1);
        assert_eq!(g.len(), 1);
        order.push(h.task(g[0].1).job);
        h.accept("any", 1, g[0].0).unwrap();
    }
    assert_eq!(
        order,
        vec![a, b, a, b],
        "one lane does not starve the other"
    );
    h.check_replay();
}

#[test]
fn a_plain_worker_still_serves_only_its_lanes() {
    let mut h = Harness::new(config());
    register(&mut h, "plain", &[]).unwrap();
    h.submit(in_lane("b", "batch", &["b1"])).unwrap();
    assert!(h.request("plain", 1, 4).is_empty());
    register(&mut h, "any", &[ALL_LANES]).unwrap();
    assert_eq!(h.request("any", 1, 4).len(), 1);
}

#[test]
fn the_all_lanes_token_must_stand_alone() {
    let mut h = Harness::new(config());
    let refused = register(&mut h, "w", &["batch", ALL_LANES]).unwrap_err();
    let Rejection::InvalidWorker { why, .. } = &refused else {
        panic!("{refused:?}");
    };
    assert!(why.contains("every lane"), "{why}");
    assert!(h.engine.workers().is_empty());
}

#[test]
fn capabilities_still_apply_to_an_all_lanes_worker() {
    let mut h = Harness::new(config());
    register(&mut h, "any", &[ALL_LANES]).unwrap();
    let mut spec = in_lane("g", "gpu", &["plain"]);
    spec.tasks.push(TaskSpec::new("train").requires(&["gpu"]));
    let (j, first) = h.submit(spec).unwrap();
    let g = h.request("any", 1, 8);
    assert_eq!(g.iter().map(|x| x.1).collect::<Vec<_>>(), vec![first]);
    assert_eq!(
        h.task(TaskId::new(first.get() + 1)).status,
        TaskStatus::Blocked
    );
    assert!(h.engine.describe_job(j).is_ok());
}

#[test]
fn an_all_lanes_worker_survives_snapshot_and_replay() {
    let mut h = Harness::new(config());
    register(&mut h, "any", &[ALL_LANES]).unwrap();
    h.submit(in_lane("a", "alpha", &["a1", "a2"])).unwrap();
    h.submit(in_lane("b", "beta", &["b1"])).unwrap();
    let g = h.request("any", 1, 1);
    h.accept("any", 1, g[0].0).unwrap();
    let restored = Engine::restore(&h.engine.snapshot()).unwrap();
    let (mut a, mut b) = (h.engine.clone(), restored);
    let more = Input::worker(
        &wid("any"),
        inst(1),
        WorkerCommand::RequestWork { credits: 2 },
    );
    assert_eq!(a.apply(5, more.clone()), b.apply(5, more));
    assert_eq!(a.digest(), b.digest());
    h.check_replay();
}

#[test]
fn a_worker_naming_several_lanes_takes_them_in_turn() {
    let mut h = Harness::new(config());
    register(&mut h, "two", &["alpha", "beta"]).unwrap();
    let (a, _) = h
        .submit(in_lane("a", "alpha", &["a1", "a2", "a3"]))
        .unwrap();
    let (b, _) = h.submit(in_lane("b", "beta", &["b1", "b2", "b3"])).unwrap();
    let order: Vec<JobId> = h
        .request("two", 1, 4)
        .iter()
        .map(|(_, t)| h.task(*t).job)
        .collect();
    assert_eq!(
        order,
        vec![a, b, a, b],
        "one lane does not starve the other"
    );
    h.check_replay();
}

#[test]
fn an_all_lanes_worker_looks_past_lanes_whose_tasks_it_cannot_take() {
    let mut h = Harness::new(config());
    // A worker that could run the gpu task, but asks for nothing.
    h.register("gpu", 1, &["gpu"], 1).unwrap();
    register(&mut h, "any", &[ALL_LANES]).unwrap();
    let mut gpu_job = in_lane("g", "alpha", &["g1"]);
    gpu_job.tasks[0] = TaskSpec::new("g1").requires(&["gpu"]);
    h.submit(gpu_job).unwrap();
    let (plain, _) = h.submit(in_lane("p", "beta", &["p1"])).unwrap();
    let grants = h.request("any", 1, 1);
    assert_eq!(grants.len(), 1, "the task in the next lane is offered");
    assert_eq!(h.task(grants[0].1).job, plain);
    h.check_replay();
}
