//! What a simulated task does, carried in its payload: how long it runs and how many
//! of its first attempts fail. The engine treats payloads as opaque bytes, exactly as
//! it treats real ones; only simulated workers read this.

use keel_engine::Payload;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TaskWork {
    pub duration_ms: u64,
    /// Attempts numbered up to this fail whoever runs them.
    pub fail_attempts: u8,
}

impl TaskWork {
    pub(crate) fn encode(self) -> Payload {
        let mut b = self.duration_ms.to_le_bytes().to_vec();
        b.push(self.fail_attempts);
        Payload::from(b)
    }

    /// Reads a payload; anything else is a task of default length that never fails.
    pub(crate) fn decode_bytes(b: &[u8]) -> TaskWork {
        if b.len() != 9 {
            return TaskWork {
                duration_ms: 1_000,
                fail_attempts: 0,
            };
        }
        let mut d = [0u8; 8];
        d.copy_from_slice(&b[..8]);
        TaskWork {
            duration_ms: u64::from_le_bytes(d),
            fail_attempts: b[8],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let w = TaskWork {
            duration_ms: 1234,
            fail_attempts: 2,
        };
        assert_eq!(TaskWork::decode_bytes(w.encode().as_bytes()), w);
        assert_eq!(TaskWork::decode_bytes(b"x").duration_ms, 1_000);
    }
}
