//! Snapshots and the state digest. Both come from one canonical encoding of the state
//! (postcard over ordered collections), so equal states give equal bytes and digests.

use crate::floors::ConfigError;
use crate::invariants::{self, Violation};
use crate::state::State;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Format version of snapshots; bumped whenever the state's shape changes (version 2:
/// engine-wide limits, holder counts of interned ids, stored bytes; version 3: upstream
/// tasks, the resuming signal, per-job output bytes, the input and output limits, and
/// the result tasks a job names; version 4: tasks a tenant keeps over a lowered cap;
/// version 5: rate limits, the rate keys of tasks and the token buckets drawn from;
/// version 8: task output streams and their modes; version 9: per-job stream bytes
/// and their limit, apart from outputs; version 10: streaming edges between tasks).
pub const SNAPSHOT_VERSION: u32 = 10;

/// A 128-bit hash of the whole engine state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Digest(pub u128);

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Why a snapshot was not restored; the caller keeps whatever state it had.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RestoreError {
    /// The snapshot was written by an engine with another state shape.
    #[error("snapshot format version {found}, this engine reads version {expected}")]
    Version {
        /// The version in the snapshot.
        found: u32,
        /// [`SNAPSHOT_VERSION`].
        expected: u32,
    },
    /// The bytes are truncated or corrupt; the decoder's message says where.
    #[error("snapshot does not decode: {0}")]
    Decode(String),
    /// The state decodes but breaks an invariant, so running it could corrupt more.
    #[error("snapshot decodes to an inconsistent state: {0}")]
    Inconsistent(Violation),
    /// The snapshot's configuration is below a floor of `Config::validate`.
    #[error("snapshot holds an invalid configuration: {0}")]
    Config(ConfigError),
}

pub(crate) fn digest(state: &State) -> Digest {
    Digest(hash_encoding(state))
}

/// The 128-bit xxh3 of `value`'s postcard encoding, computed without holding it.
fn hash_encoding<T: Serialize>(value: &T) -> u128 {
    let mut h = Hasher::new();
    // Hashing cannot fail; an error could only come from a serializer refusing a value.
    let _ = postcard::serialize_with_flavor::<T, &mut Hasher, ()>(value, &mut h);
    h.finish().digest128()
}

/// A fingerprint of a value through its `Hash` impl, for telling a resubmitted spec from
/// a different one. Integers are written little-endian and lengths as u64, so it does
/// not depend on the platform; it is cheaper than hashing a serialized encoding.
pub(crate) fn fingerprint<T: std::hash::Hash>(value: &T) -> u64 {
    let mut h = Fingerprint(0x243F_6A88_85A3_08D3);
    value.hash(&mut h);
    crate::retry::mix(std::hash::Hasher::finish(&h))
}

struct Fingerprint(u64);

impl std::hash::Hasher for Fingerprint {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let h = if bytes.len() <= 8 {
            let mut word = [0u8; 8];
            word[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(word) ^ ((bytes.len() as u64) << 56)
        } else {
            xxhash_rust::xxh3::xxh3_64(bytes)
        };
        self.write_u64(h);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(23) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(n as u64);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }

    fn write_i32(&mut self, n: i32) {
        self.write_u64(n as u32 as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A postcard output that feeds a streaming hash through a small buffer, so hashing a
/// large state needs no allocation of its encoding and small writes stay cheap.
struct Hasher {
    hash: xxhash_rust::xxh3::Xxh3,
    buf: Vec<u8>,
}

const HASH_BUF: usize = 4096;

impl Hasher {
    fn new() -> Hasher {
        Hasher {
            hash: xxhash_rust::xxh3::Xxh3::new(),
            buf: Vec::with_capacity(HASH_BUF),
        }
    }

    fn finish(mut self) -> xxhash_rust::xxh3::Xxh3 {
        self.hash.update(&self.buf);
        self.hash
    }
}

impl postcard::ser_flavors::Flavor for &mut Hasher {
    type Output = ();

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        if self.buf.len() == HASH_BUF {
            self.hash.update(&self.buf);
            self.buf.clear();
        }
        self.buf.push(data);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if self.buf.len() + data.len() > HASH_BUF {
            self.hash.update(&self.buf);
            self.buf.clear();
            if data.len() > HASH_BUF {
                self.hash.update(data);
                return Ok(());
            }
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

pub(crate) fn snapshot(state: &State) -> Vec<u8> {
    let out = SNAPSHOT_VERSION.to_le_bytes().to_vec();
    // Encoded after the header in place, not encoded apart and copied behind it: a
    // large state's snapshot is then moved once less. Serializing plain data into a
    // Vec cannot fail.
    postcard::to_extend(state, out).unwrap_or_else(|_| SNAPSHOT_VERSION.to_le_bytes().to_vec())
}

pub(crate) fn restore(bytes: &[u8]) -> Result<State, RestoreError> {
    let Some((version, body)) = bytes.split_first_chunk::<4>() else {
        return Err(RestoreError::Decode(
            "shorter than its version header".into(),
        ));
    };
    let found = u32::from_le_bytes(*version);
    if found != SNAPSHOT_VERSION {
        return Err(RestoreError::Version {
            found,
            expected: SNAPSHOT_VERSION,
        });
    }
    let mut state: State =
        postcard::from_bytes(body).map_err(|e| RestoreError::Decode(e.to_string()))?;
    state.config.validate().map_err(RestoreError::Config)?;
    invariants::check_stored(&state).map_err(RestoreError::Inconsistent)?;
    // The first input dispatches to every waiting worker, not only to those it changes.
    state.dispatch_dirty = true;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::Digest;

    /// Digests are compared by people across logs and tools: always 32 hex digits.
    #[test]
    fn a_digest_prints_as_32_hex_digits() {
        assert_eq!(Digest(0xab).to_string(), format!("{:0>32}", "ab"));
        assert_eq!(Digest(u128::MAX).to_string(), "f".repeat(32));
    }

    /// The streaming hasher must give the hash of the whole encoding, whatever the mix
    /// of single bytes, small writes and writes larger than its buffer.
    #[test]
    fn the_streamed_hash_is_the_hash_of_the_encoding() {
        let sizes = [0, 1, 7, 4095, 4096, 4097, 9000, 3, 4090, 12];
        let mut value: Vec<Vec<u8>> = Vec::new();
        for (i, n) in sizes.into_iter().enumerate() {
            value.push((0..n).map(|b| (b * 31 + i) as u8).collect());
            let whole = postcard::to_allocvec(&value).unwrap();
            assert_eq!(
                super::hash_encoding(&value),
                xxhash_rust::xxh3::xxh3_128(&whole),
                "after a write of {n} bytes"
            );
        }
        let many_small: Vec<u16> = (0..5000).collect();
        let whole = postcard::to_allocvec(&many_small).unwrap();
        assert_eq!(
            super::hash_encoding(&many_small),
            xxhash_rust::xxh3::xxh3_128(&whole)
        );
    }

    fn fingerprint_of(write: impl FnOnce(&mut super::Fingerprint)) -> u64 {
        let mut h = super::Fingerprint(u64::MAX);
        write(&mut h);
        std::hash::Hasher::finish(&h)
    }

    /// Every kind of write changes the fingerprint, and writes that differ only in
    /// their length, their last byte or bits the state already has set stay apart.
    #[test]
    fn fingerprint_writes_keep_what_tells_values_apart() {
        use std::hash::Hasher;
        let untouched = fingerprint_of(|_| {});
        assert_ne!(fingerprint_of(|h| h.write_u8(1)), untouched);
        assert_ne!(fingerprint_of(|h| h.write_u32(1)), untouched);
        assert_ne!(fingerprint_of(|h| h.write_i32(-1)), untouched);
        assert_ne!(fingerprint_of(|h| h.write_usize(1)), untouched);
        assert_ne!(
            fingerprint_of(|h| h.write_u64(0)),
            fingerprint_of(|h| h.write_u64(1))
        );
        assert_ne!(
            fingerprint_of(|h| h.write(&[1])),
            fingerprint_of(|h| h.write(&[1, 0]))
        );
        assert_ne!(
            fingerprint_of(|h| h.write(&[0; 8])),
            fingerprint_of(|h| h.write(&[0, 0, 0, 0, 0, 0, 0, 8]))
        );
    }
}
