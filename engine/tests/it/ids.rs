//! The id types' public API: built from a number, read back, the i-th task of a job, and
//! a wire format that is the bare inner value (logs, snapshots and goldens hold it).

use keel_engine::{GrantId, InstanceId, JobId, TaskId, WorkerId};

#[test]
fn numbers_round_trip_at_the_edges() {
    for n in [0, 1, u64::MAX] {
        assert_eq!(JobId::new(n).get(), n);
        assert_eq!(TaskId::new(n).get(), n);
        assert_eq!(GrantId::new(n).get(), n);
        assert_eq!(InstanceId::new(n).get(), n);
    }
    let w = WorkerId::new("w-1");
    assert_eq!(w.as_str(), "w-1");
    assert_eq!(w.into_string(), "w-1");
}

#[test]
fn nth_after_counts_from_the_first_task() {
    let first = TaskId::new(40);
    assert_eq!(TaskId::nth_after(first, 0), first);
    assert_eq!(TaskId::nth_after(first, 1), TaskId::new(41));
    assert_eq!(TaskId::nth_after(first, 7), TaskId::new(47));
    // Past the last id it stays at the last one instead of wrapping to task 0.
    let last = TaskId::new(u64::MAX - 1);
    assert_eq!(TaskId::nth_after(last, 1), TaskId::new(u64::MAX));
    assert_eq!(TaskId::nth_after(last, 5), TaskId::new(u64::MAX));
}

#[test]
fn serialized_as_the_bare_value() {
    let json = serde_json::to_string(&(
        JobId::new(3),
        TaskId::new(u64::MAX),
        GrantId::new(0),
        InstanceId::new(9),
        WorkerId::new("w1"),
    ))
    .unwrap();
    assert_eq!(json, r#"[3,18446744073709551615,0,9,"w1"]"#);
    let back: (JobId, TaskId, GrantId, InstanceId, WorkerId) = serde_json::from_str(&json).unwrap();
    assert_eq!(back.0, JobId::new(3));
    assert_eq!(back.1, TaskId::new(u64::MAX));
    assert_eq!(back.4, WorkerId::new("w1"));
}

#[test]
fn displayed_with_their_prefix() {
    assert_eq!(JobId::new(2).to_string(), "j2");
    assert_eq!(TaskId::new(3).to_string(), "t3");
    assert_eq!(GrantId::new(4).to_string(), "g4");
    assert_eq!(InstanceId::new(5).to_string(), "i5");
    assert_eq!(WorkerId::new("w").to_string(), "w");
}
