//! The `scenario` fuzz target's checks, run without the fuzzer: every file of the
//! checked-in corpus (`fuzz/corpus/scenario/`) and random text, both arbitrary and built
//! from scenario syntax, so a regression the fuzzer once found fails `cargo test`.

#[path = "../../fuzz/corpus_replay.rs"]
mod corpus_replay;
#[path = "fuzz_check/mod.rs"]
mod fuzz_check;

use proptest::prelude::*;

#[test]
fn every_corpus_file_passes_the_fuzz_checks() {
    corpus_replay::replay("scenario", 5, fuzz_check::check);
}

/// Fragments of scenario syntax, so random sequences often load and reach the checks
/// and the printer rather than stopping at the TOML parser.
const FRAGMENTS: &[&str] = &[
    "name = \"s\"\n",
    "heal_at_ms = 1000\n",
    "liveness_ms = 5\n",
    "description = \"d\\n\"\n",
    "[engine]\n",
    "lease_ttl_ms = 0\n",
    "tenant_caps = { t = 1 }\n",
    "[network]\n",
    "loss = 0.5\n",
    "loss = nan\n",
    "duplicate = 1.5\n",
    "latency_min_ms = 9\n",
    "sync_interval_ms = 0\n",
    "[[worker]]\n",
    "name = \"w\"\n",
    "name = \"v\"\n",
    "capabilities = [\"gpu\"]\n",
    "max_concurrency = 0\n",
    "slowness = inf\n",
    "fail_rate = -0.0\n",
    "drift_ppm = -9223372036854775808\n",
    "[[job]]\n",
    "submit_ms = 18446744073709551615\n",
    "tenant = \"t\"\n",
    "[[job.task]]\n",
    "key = \"a\"\n",
    "key = \"b\"\n",
    "after = [\"a\"]\n",
    "after = [\"zz\"]\n",
    "group = \"quorum\"\n",
    "quorum = 3\n",
    "fail_attempts = 255\n",
    "[[fault]]\n",
    "at_ms = 10\n",
    "kind = \"crash_worker\"\n",
    "kind = \"partition\"\n",
    "kind = \"cancel_job\"\n",
    "worker = \"w\"\n",
    "workers = [\"w\", \"nobody\"]\n",
    "job = \"s\"\n",
    "for_ms = 100\n",
    "delta_ms = -5\n",
    "direction = \"to_coordinator\"\n",
    "[expect]\n",
    "violations = 0\n",
    "jobs = { s = \"succeeded\" }\n",
    "kind = \"slow_fsync\"\n",
    "kind = \"corrupt_log\"\n",
    "kind = \"fail_append\"\n",
    "delay_ms = 300\n",
    "[[script]]\n",
    "do = \"complete\"\n",
    "do = \"register\"\n",
    "do = \"skip_renewals\"\n",
    "task = \"a\"\n",
    "attempt = 1\n",
    "epoch = 0\n",
    "incarnation = 999\n",
    "credits = 4294967295\n",
    "recovery_refused = true\n",
    "[[expect.count]]\n",
    "what = \"reject:stale_fence\"\n",
    "what = \"effect:task_requeud\"\n",
    "what = \"check:liveness\"\n",
    "from_ms = 5\n",
    "until_ms = 1\n",
    "\u{e9}\t\r\n",
];

fn scenario_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..40)
        .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn scenario_like_text_passes_the_fuzz_checks(text in scenario_like()) {
        fuzz_check::check(text.as_bytes());
    }

    #[test]
    fn arbitrary_text_passes_the_fuzz_checks(text in "\\PC{0,200}") {
        fuzz_check::check(text.as_bytes());
    }
}

#[test]
fn every_syntax_error_is_reported_with_a_message() {
    for (name, bytes) in corpus_replay::corpus("scenario") {
        if !name.starts_with("regression-empty-message") {
            continue;
        }
        let src = String::from_utf8(bytes).expect("regression inputs are UTF-8");
        let e = keel_sim::load("fuzz.toml", &src).expect_err("regression inputs are refused");
        assert!(!e.message.is_empty(), "{name}: {e}");
    }
}
