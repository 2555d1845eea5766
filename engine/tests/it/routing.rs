//! Who gets which task: capabilities, blocking, concurrency caps, tenant fairness,
//! priorities and lanes.
use keel_engine::*;
use keel_engine_harness::*;

#[test]
fn tasks_go_only_to_workers_with_every_capability() {
    let mut h = Harness::new(config());
    h.register("cpu", 1, &["x86"], 4).unwrap();
    h.register("gpu", 1, &["cuda", "x86"], 4).unwrap();
    let mut spec = JobSpec::new("j", tasks(&["plain", "train"]));
    spec.tasks[1] = TaskSpec::new("train").requires(&["x86", "cuda"]);
    let (_, first) = h.submit(spec).unwrap();
    let cpu = h.request("cpu", 1, 4);
    assert_eq!(
        cpu,
        vec![(GrantId::new(1), first)],
        "the cpu worker gets only the plain task"
    );
    let gpu = h.request("gpu", 1, 4);
    assert_eq!(
        gpu.iter().map(|g| g.1).collect::<Vec<_>>(),
        vec![TaskId::new(first.get() + 1)]
    );
}

#[test]
fn a_task_no_worker_can_run_is_blocked_until_one_registers() {
    let mut h = Harness::new(config());
    h.register("cpu", 1, &[], 1).unwrap();
    let spec = JobSpec::new("j", vec![TaskSpec::new("t").requires(&["gpu"])]);
    let out = h.apply(Input::Client(ClientCommand::SubmitJob(spec)));
    let task = match accepted(&out) {
        Accepted::JobSubmitted { first_task, .. } => *first_task,
        other => panic!("{other:?}"),
    };
    assert!(has(
        &out.effects,
        |e| matches!(e, Effect::TaskBlocked { requires, .. } if requires == &["gpu"])
    ));
    assert_eq!(h.task(task).status, TaskStatus::Blocked);
    assert!(h.request("cpu", 1, 1).is_empty());
    let out = h.worker(
        "gpu1",
        1,
        WorkerCommand::Register {
            capabilities: vec!["gpu".into()],
            lanes: vec![],
            max_concurrency: 1,
        },
    );
    assert!(has(
        &out.effects,
        |e| matches!(e, Effect::TaskUnblocked { task: t, .. } if *t == task)
    ));
    assert_eq!(h.task(task).status, TaskStatus::Queued);
    // The only capable worker leaves: the task is blocked again.
    let out = h.worker("gpu1", 1, WorkerCommand::Drain);
    assert!(has(&out.effects, |e| matches!(
        e,
        Effect::TaskBlocked { .. }
    )));
    assert_eq!(h.task(task).status, TaskStatus::Blocked);
}

#[test]
fn the_job_cap_limits_tasks_in_flight() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 10).unwrap();
    let mut spec = JobSpec::new("j", tasks(&["a", "b", "c", "d", "e"]));
    spec.max_concurrency = Some(2);
    h.submit(spec).unwrap();
    let grants = h.request("w", 1, 10);
    assert_eq!(grants.len(), 2);
    let f = h.accept("w", 1, grants[0].0).unwrap();
    let parked = h
        .engine
        .describe_job(JobId::new(1))
        .unwrap()
        .tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Parked)
        .count();
    assert_eq!(parked, 3);
    let out = h.complete("w", 1, f);
    assert_eq!(
        grants_for(&out.effects, "w").len(),
        1,
        "one slot freed, one more offered"
    );
}

#[test]
fn tenant_caps_hold_and_scarce_workers_are_shared_fairly() {
    let mut cfg = config();
    cfg.tenants.caps.insert("small".into(), 1);
    let mut h = Harness::new(cfg);
    h.register("w", 1, &[], 6).unwrap();
    let mut big = JobSpec::new("big", tasks(&["b1", "b2", "b3", "b4", "b5", "b6"]));
    big.tenant = "big".into();
    let mut other = JobSpec::new("other", tasks(&["o1", "o2", "o3", "o4"]));
    other.tenant = "other".into();
    let mut small = JobSpec::new("small", tasks(&["s1", "s2"]));
    small.tenant = "small".into();
    let (jb, _) = h.submit(big).unwrap();
    let (jo, _) = h.submit(other).unwrap();
    let (js, _) = h.submit(small).unwrap();
    let grants = h.request("w", 1, 6);
    let mut per_job = std::collections::BTreeMap::new();
    for (_, t) in &grants {
        *per_job.entry(h.task(*t).job).or_insert(0) += 1;
    }
    // Six slots: "small" is capped at 1; the other two tenants split the rest evenly,
    // although "big" submitted first and has the most tasks.
    assert_eq!(per_job.get(&js), Some(&1));
    assert_eq!(per_job.get(&jb), Some(&3));
    assert_eq!(per_job.get(&jo), Some(&2));
}

#[test]
fn weights_skew_the_fair_share() {
    let mut cfg = config();
    cfg.tenants.weights.insert("heavy".into(), 3);
    let mut h = Harness::new(cfg);
    h.register("w", 1, &[], 8).unwrap();
    let mut a = JobSpec::new(
        "a",
        (0..8).map(|i| TaskSpec::new(format!("a{i}"))).collect(),
    );
    a.tenant = "heavy".into();
    let mut b = JobSpec::new(
        "b",
        (0..8).map(|i| TaskSpec::new(format!("b{i}"))).collect(),
    );
    b.tenant = "light".into();
    let (ja, _) = h.submit(a).unwrap();
    h.submit(b).unwrap();
    let grants = h.request("w", 1, 8);
    let heavy = grants.iter().filter(|(_, t)| h.task(*t).job == ja).count();
    assert_eq!(
        heavy, 6,
        "weight 3 against 1 gets three quarters of 8 slots"
    );
}

#[test]
fn higher_priority_goes_first_then_submission_order() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let mut low = JobSpec::new("low", tasks(&["l1", "l2"]));
    low.priority = 0;
    let mut high = JobSpec::new("high", tasks(&["h1"]));
    high.priority = 5;
    let (_, l1) = h.submit(low).unwrap();
    let (_, h1) = h.submit(high).unwrap();
    let order: Vec<TaskId> = (0..3)
        .map(|_| {
            let f = h.take("w", 1);
            h.complete("w", 1, f);
            f.task
        })
        .collect();
    assert_eq!(order, vec![h1, l1, TaskId::new(l1.get() + 1)]);
}

#[test]
fn lanes_are_separate_queues_served_in_turn() {
    let mut h = Harness::new(config());
    let reg = |lanes: &[&str]| WorkerCommand::Register {
        capabilities: vec![],
        lanes: lanes.iter().map(|l| l.to_string()).collect(),
        max_concurrency: 4,
    };
    h.worker("fast-only", 1, reg(&["fast"]));
    h.worker("both", 1, reg(&["bulk", "fast"]));
    let mut bulk = JobSpec::new("bulk", tasks(&["b1", "b2", "b3"]));
    bulk.lane = "bulk".into();
    let mut fast = JobSpec::new("fast", tasks(&["f1", "f2"]));
    fast.lane = "fast".into();
    let (jb, _) = h.submit(bulk).unwrap();
    let (jf, _) = h.submit(fast).unwrap();
    assert_eq!(
        h.engine.queued_by_lane(),
        vec![("bulk".to_string(), 3), ("fast".to_string(), 2)]
    );
    let g = h.request("fast-only", 1, 4);
    assert!(g.iter().all(|(_, t)| h.task(*t).job == jf));
    assert_eq!(g.len(), 2);
    let g = h.request("both", 1, 4);
    assert_eq!(g.len(), 3);
    assert!(g.iter().all(|(_, t)| h.task(*t).job == jb));
}

#[test]
fn queue_depth_per_lane_sums_the_lanes_queues() {
    let mut h = Harness::new(config());
    let in_lane = |name: &str, tenant: &str, lane: &str, keys: &[&str]| {
        let mut spec = JobSpec::new(name, tasks(keys));
        spec.tenant = tenant.into();
        spec.lane = lane.into();
        spec
    };
    // Lane "bulk" holds three queues (two tenants, and a rate key), "fast" one.
    h.submit(in_lane("b1", "t1", "bulk", &["w", "x", "y", "z"]))
        .unwrap();
    h.submit(in_lane("b2", "t2", "bulk", &["x", "y", "z"]))
        .unwrap();
    let mut keyed = in_lane("b3", "t2", "bulk", &["x"]);
    keyed.tasks[0].rate_key = Some("api".into());
    h.submit(keyed).unwrap();
    h.submit(in_lane("f1", "t1", "fast", &["x"])).unwrap();
    assert_eq!(
        h.engine.queued_by_lane(),
        vec![("bulk".to_string(), 8), ("fast".to_string(), 1)]
    );
}

#[test]
fn waiting_workers_take_ready_tasks_in_turn_not_all_to_the_first() {
    let mut h = Harness::new(config());
    for w in ["a", "b"] {
        h.register(w, 1, &[], 2).unwrap();
        assert!(h.request(w, 1, 2).is_empty());
    }
    let out = h.apply(Input::Client(ClientCommand::SubmitJob(JobSpec::new(
        "j",
        tasks(&["one", "two"]),
    ))));
    assert_eq!(
        (
            grants_for(&out.effects, "a").len(),
            grants_for(&out.effects, "b").len()
        ),
        (1, 1),
        "one grant per round while two workers wait"
    );
}
