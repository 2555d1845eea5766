//! The redb log passes the shared conformance suite, each case in a fresh directory.

keel_log::conformance_tests!(async {
    let dir = tempfile::tempdir().expect("temporary directory");
    let log = keel_log::RedbLog::open(dir.path()).expect("open redb log");
    (log, dir)
});
