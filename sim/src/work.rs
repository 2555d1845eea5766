//! What a simulated task does, carried in its payload: how long it runs, how many of
//! its first attempts fail, and what usage it reports. The engine treats payloads as opaque bytes, exactly as
//! it treats real ones; only simulated workers read this.

use crate::usage::UsagePlan;
use keel_engine::{Fence, Payload, TaskId};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TaskWork {
    pub duration_ms: u64,
    /// Attempts numbered up to this fail whoever runs them.
    pub fail_attempts: u8,
    /// What each attempt reports against a budget.
    pub usage: Option<UsagePlan>,
    /// A run no signal resumed suspends at [`WAITPOINT`] when its work is done, for
    /// the client to signal.
    pub waits: bool,
    /// Frames each attempt emits to its task's stream while it runs.
    pub frames: u8,
    /// The producers whose streams it reads, from its grant (not in the payload).
    pub streams: Vec<String>,
}

/// The waitpoint a waiting task suspends at.
pub(crate) const WAITPOINT: &str = "go";

/// Marks a waiting task in its payload, after the failing attempts: no usage plan's
/// text starts with it, so payloads of other tasks are unchanged.
const WAITS: u8 = 0xff;

/// Marks a streaming task in its payload, after the waiting mark, followed by its
/// frame count; no usage plan's text starts with it either.
const FRAMES: u8 = 0xfe;

/// The data of frame `k` (from 1) of the attempt `fence`: it names the attempt, so a
/// check that reads it can tell whose it is.
pub(crate) fn frame_of(fence: Fence, k: u8) -> Vec<u8> {
    format!("{}.a{}.e{}.f{k}", fence.task, fence.attempt, fence.epoch).into_bytes()
}

/// The payload a client signals `task` with: it names the task, so a check can tell a
/// signal handed to the wrong task.
pub(crate) fn signal_for(task: TaskId) -> Vec<u8> {
    format!("signal.{task}").into_bytes()
}

impl TaskWork {
    /// Eight bytes of duration, one of failing attempts, the waiting mark if it waits,
    /// then the usage plan's text.
    pub(crate) fn encode(&self) -> Payload {
        let mut b = self.duration_ms.to_le_bytes().to_vec();
        b.push(self.fail_attempts);
        if self.waits {
            b.push(WAITS);
        }
        if self.frames > 0 {
            b.extend_from_slice(&[FRAMES, self.frames]);
        }
        if let Some(usage) = &self.usage {
            b.extend_from_slice(usage.encode().as_bytes());
        }
        Payload::from(b)
    }

    /// Reads a payload; anything else is a task of default length that never fails
    /// and reports nothing.
    pub(crate) fn decode_bytes(b: &[u8]) -> TaskWork {
        let fallback = TaskWork {
            duration_ms: 1_000,
            ..TaskWork::default()
        };
        if b.len() < 9 {
            return fallback;
        }
        let waits = b.get(9) == Some(&WAITS);
        let rest = &b[if waits { 10 } else { 9 }..];
        let (frames, rest) = match rest {
            [FRAMES, n, rest @ ..] => (*n, rest),
            rest => (0, rest),
        };
        let usage = match std::str::from_utf8(rest) {
            Ok("") => None,
            Ok(text) => match UsagePlan::decode(text) {
                Some(plan) => Some(plan),
                None => return fallback,
            },
            Err(_) => return fallback,
        };
        let mut d = [0u8; 8];
        d.copy_from_slice(&b[..8]);
        TaskWork {
            duration_ms: u64::from_le_bytes(d),
            fail_attempts: b[8],
            usage,
            waits,
            frames,
            streams: Vec::new(),
        }
    }
}

/// The output a simulated attempt completes with: its fence spelled out, so a check
/// that sees the bytes anywhere (a grant's inputs, a result) can tell whose they are.
pub(crate) fn output_of(fence: Fence) -> Vec<u8> {
    format!("{}.a{}.e{}", fence.task, fence.attempt, fence.epoch).into_bytes()
}

/// The fence an output of [`output_of`] names; `None` for other bytes.
pub(crate) fn fence_of_output(bytes: &[u8]) -> Option<Fence> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut parts = text.split('.');
    let task = parts.next()?.strip_prefix('t')?.parse().ok()?;
    let attempt = parts.next()?.strip_prefix('a')?.parse().ok()?;
    let epoch = parts.next()?.strip_prefix('e')?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(Fence {
        task: TaskId::new(task),
        attempt,
        epoch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_names_the_attempt_that_made_it() {
        let fence = Fence {
            task: TaskId::new(7),
            attempt: 2,
            epoch: 3,
        };
        assert_eq!(output_of(fence), b"t7.a2.e3");
        assert_eq!(fence_of_output(&output_of(fence)), Some(fence));
        for other in [&b"ok"[..], b"t7.a2", b"t7.a2.e3.x", b"7.a2.e3", b"\xff"] {
            assert_eq!(fence_of_output(other), None, "{other:?}");
        }
    }

    #[test]
    fn round_trips() {
        let mut w = TaskWork {
            duration_ms: 1234,
            fail_attempts: 2,
            usage: None,
            waits: false,
            frames: 0,
            streams: Vec::new(),
        };
        assert_eq!(w.encode().len(), 9, "a task that does not wait has no mark");
        assert_eq!(TaskWork::decode_bytes(w.encode().as_bytes()), w);
        w.waits = true;
        assert_eq!(TaskWork::decode_bytes(w.encode().as_bytes()), w);
        w.frames = 3;
        assert_eq!(TaskWork::decode_bytes(w.encode().as_bytes()), w);
        w.usage = Some(UsagePlan {
            budget: "llm".into(),
            dimension: "tokens".into(),
            amount: 7,
            reports: 2,
            resend: false,
        });
        assert_eq!(TaskWork::decode_bytes(w.encode().as_bytes()), w);
        assert_eq!(TaskWork::decode_bytes(b"x").duration_ms, 1_000);
        let mut garbled = w.encode().as_bytes().to_vec();
        garbled.extend_from_slice(b" more");
        assert_eq!(TaskWork::decode_bytes(&garbled).usage, None);
    }
}
