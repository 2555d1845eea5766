//! The `grpc_requests` fuzz target's checks, run without the fuzzer: every file of the
//! checked-in corpus (`fuzz/corpus/grpc_requests/`) and random inputs, both arbitrary
//! bytes, damaged corpus files and well-formed requests with random fields (from a
//! small seeded generator: keel-grpc has no proptest), so a regression the fuzzer once
//! found fails `cargo test`.

#[path = "../../../fuzz/corpus_replay.rs"]
mod corpus_replay;
#[path = "fuzz_check/mod.rs"]
mod fuzz_check;

use keel_grpc::proto;
use keel_grpc::proto::worker_command::Command as Wire;
use prost::Message;

#[test]
fn every_corpus_file_passes_the_fuzz_checks() {
    corpus_replay::replay("grpc_requests", 5, fuzz_check::check);
}

fn input(kind: u8, message: &impl Message) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend(message.encode_to_vec());
    out
}

/// xorshift64*: reproducible random choices without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, max: u64) -> Vec<u8> {
        (0..self.below(max)).map(|_| self.next() as u8).collect()
    }
    fn time(&mut self) -> u64 {
        [0, self.below(1_000), u64::MAX][self.below(3) as usize]
    }
    fn fence(&mut self) -> Option<proto::Fence> {
        (self.below(4) != 0).then(|| proto::Fence {
            task: self.below(4),
            attempt: self.below(3) as u32,
            epoch: self.below(3),
        })
    }
}

fn wire_command(rng: &mut Rng) -> Wire {
    match rng.below(11) {
        0 => Wire::Heartbeat(proto::Heartbeat {}),
        1 => Wire::RequestWork(proto::RequestWork {
            credits: rng.below(2_000) as u32,
        }),
        2 => Wire::Drain(proto::Drain {}),
        3 => Wire::Deregister(proto::Deregister {}),
        4 => Wire::AcceptGrant(proto::AcceptGrant {
            grant: rng.below(4),
        }),
        5 => Wire::ReleaseGrant(proto::ReleaseGrant {
            grant: rng.below(4),
        }),
        6 => Wire::Renew(proto::Renew { fence: rng.fence() }),
        7 => Wire::Progress(proto::Progress {
            fence: rng.fence(),
            done_per_mille: rng.below(1_200) as u32,
            message: "p".repeat(rng.below(3) as usize),
        }),
        9 => Wire::Suspend(proto::Suspend {
            fence: rng.fence(),
            waitpoint: ["", "w", "a\tb"][rng.below(3) as usize].into(),
            timeout_ms: (rng.below(2) == 0).then(|| rng.time()),
            on_timeout: rng.below(4) as i32,
        }),
        8 => Wire::Complete(proto::Complete {
            fence: rng.fence(),
            output: rng.bytes(8),
        }),
        _ => Wire::Fail(proto::Fail {
            fence: rng.fence(),
            error: "e".repeat(rng.below(3) as usize),
            permanent: rng.below(2) == 0,
        }),
    }
}

fn frame(rng: &mut Rng) -> proto::WorkerFrame {
    let register = Wire::Register(proto::Register {
        worker_id: ["w2", "", "a b", "w1"][rng.below(4) as usize].into(),
        instance: rng.below(3),
        capabilities: vec!["gpu".into()],
        lanes: vec![],
        max_concurrency: rng.below(3) as u32,
    });
    let rest: Vec<Wire> = (0..rng.below(12)).map(|_| wire_command(rng)).collect();
    let commands = std::iter::once(register)
        .chain(rest)
        .enumerate()
        .map(|(seq, c)| proto::WorkerCommand {
            seq: seq as u64,
            command: Some(c),
        })
        .collect();
    proto::WorkerFrame { commands }
}

fn task(rng: &mut Rng) -> proto::TaskSpec {
    let deps = (rng.below(2) == 0).then(|| proto::DepGroup {
        kind: rng.below(5) as i32,
        quorum: rng.below(3) as u32,
        upstream: (0..rng.below(3))
            .map(|i| ["a", "b"][i as usize % 2].into())
            .collect(),
        on_unsatisfied: rng.below(4) as i32,
    });
    let retry = (rng.below(2) == 0).then(|| proto::RetryPolicy {
        max_attempts: rng.below(4) as u32,
        backoff_base_ms: rng.time(),
        backoff_factor: rng.below(3) as u32,
        backoff_max_ms: rng.time(),
        jitter_pct: rng.below(200) as u32,
    });
    proto::TaskSpec {
        key: ["a", "b", "c"][rng.below(3) as usize].into(),
        deps,
        retry,
        attempt_timeout_ms: (rng.below(2) == 0).then(|| rng.time()),
        delay_ms: rng.time(),
        ..Default::default()
    }
}

#[test]
fn random_bytes_pass_the_fuzz_checks() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..2_000 {
        fuzz_check::check(&rng.bytes(256));
    }
}

#[test]
fn damaged_corpus_files_pass_the_fuzz_checks() {
    let mut rng = Rng(7);
    for (_, bytes) in corpus_replay::corpus("grpc_requests") {
        for _ in 0..100 {
            let mut damaged = bytes.clone();
            if damaged.len() > 1 {
                let at = 1 + rng.below(damaged.len() as u64 - 1) as usize;
                damaged[at] ^= rng.next() as u8 | 1;
            }
            fuzz_check::check(&damaged);
        }
    }
}

#[test]
fn well_formed_sessions_pass_the_fuzz_checks() {
    let mut rng = Rng(11);
    for _ in 0..500 {
        fuzz_check::check(&input(0, &frame(&mut rng)));
    }
}

/// Random specs, with times up to `u64::MAX` that a client may send as they are.
#[test]
fn well_formed_submissions_pass_the_fuzz_checks() {
    let mut rng = Rng(13);
    for _ in 0..500 {
        let spec = proto::JobSpec {
            name: ["j", "k", ""][rng.below(3) as usize].into(),
            tenant: ["", "t", "t\n"][rng.below(3) as usize].into(),
            deadline_ms: (rng.below(2) == 0).then(|| rng.time()),
            tasks: (0..rng.below(4)).map(|_| task(&mut rng)).collect(),
            ..Default::default()
        };
        fuzz_check::check(&input(1, &proto::SubmitJobRequest { spec: Some(spec) }));
    }
}

#[test]
fn job_requests_pass_the_fuzz_checks() {
    for kind in 2..6 {
        for job in 0..4 {
            fuzz_check::check(&input(kind, &proto::CancelJobRequest { job }));
        }
    }
}

#[test]
fn well_formed_signals_pass_the_fuzz_checks() {
    let mut rng = Rng(17);
    for _ in 0..500 {
        let request = proto::SignalTaskRequest {
            job: rng.below(3),
            task: rng.below(4),
            waitpoint: ["", "w", "a\nb"][rng.below(3) as usize].into(),
            idempotency_key: ["", "k", "k2"][rng.below(3) as usize].into(),
            payload: vec![7; [0, 1, 100][rng.below(3) as usize]],
        };
        fuzz_check::check(&input(6, &request));
    }
}
