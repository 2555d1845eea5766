//! The in-memory log passes the shared conformance suite.

keel_log::conformance_tests!(async { (keel_log::MemoryLog::new(), ()) });
