//! The `job_spec` fuzz target's checks, run without the fuzzer: every file of the
//! checked-in corpus (`fuzz/corpus/job_spec/`) and random text, both arbitrary and
//! built from job spec syntax, so a regression the fuzzer once found fails `cargo test`.

#[path = "../../fuzz/corpus_replay.rs"]
mod corpus_replay;
#[path = "fuzz_check/mod.rs"]
mod fuzz_check;

use proptest::prelude::*;

#[test]
fn every_corpus_file_passes_the_fuzz_checks() {
    corpus_replay::replay("job_spec", 10, fuzz_check::check);
}

/// Fragments of job spec syntax, so random sequences are often nearly valid files and
/// reach the validator and planner rather than stopping at the TOML parser.
const FRAGMENTS: &[&str] = &[
    "[job]\n",
    "name = \"j\"\n",
    "tenant = \"t\"\n",
    "lane = \"l\"\n",
    "priority = -3\n",
    "deadline = \"1m\"\n",
    "deadline = \"0s\"\n",
    "[defaults]\n",
    "max_concurrency = 0\n",
    "retry = { max_attempts = 0 }\n",
    "retry = { backoff = \"5s\", backoff_max = \"1s\" }\n",
    "attempt_timeout = \"18446744073709551615ms\"\n",
    "[[task]]\n",
    "id = \"a\"\n",
    "id = \"b\"\n",
    "id = \"\"\n",
    "command = \"echo\"\n",
    "data = \"0123456789abcdefXYZ\"\n",
    "deps = [\"a\"]\n",
    "deps = [\"b\", \"b\"]\n",
    "deps = { any_of = [\"a\"] }\n",
    "deps = { quorum = 2, of = [\"a\", \"b\"] }\n",
    "deps = { quorum = 0, of = [] }\n",
    "capabilities = [\"gpu\", \"gpu\"]\n",
    "capabilities = [\"has space\"]\n",
    "on_unsatisfied = \"cancel\"\n",
    "delay = \"1h30m\"\n",
    "estimate = \"99999999999h\"\n",
    "allow_failure = true\n",
    "\n#--- pool\n",
    "[[worker]]\n",
    "count = 4\n",
    "concurrency = 0\n",
    "lanes = [\"l\"]\n",
    "\u{e9}\u{1F600}\t\r\n",
    "= ] [ { \" \\u\n",
];

fn spec_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..40)
        .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn spec_like_text_passes_the_fuzz_checks(text in spec_like()) {
        fuzz_check::check(text.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_pass_the_fuzz_checks(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        fuzz_check::check(&bytes);
    }

    #[test]
    fn arbitrary_text_passes_the_fuzz_checks(text in "\\PC{0,200}") {
        fuzz_check::check(text.as_bytes());
    }
}

#[test]
fn every_syntax_error_is_reported_with_a_message() {
    for (name, bytes) in corpus_replay::corpus("job_spec") {
        if !name.starts_with("regression-empty-message") {
            continue;
        }
        let src = String::from_utf8(bytes).expect("regression inputs are UTF-8");
        let e = keel_jobs::load_job("job.toml", &src, &keel_jobs::Limits::default())
            .expect_err("regression inputs are refused");
        assert!(!e.message.is_empty(), "{name}: {e}");
    }
}
