//! Snapshots and the state digest. Both come from one canonical encoding of the state
//! (postcard over ordered collections), so equal states give equal bytes and digests.

use crate::invariants::{self, Violation};
use crate::state::State;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Format version of snapshots; bumped whenever the state's shape changes.
pub const SNAPSHOT_VERSION: u32 = 1;

/// A 128-bit hash of the whole engine state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Digest(pub u128);

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RestoreError {
    #[error("snapshot format version {found}, this engine reads version {expected}")]
    Version { found: u32, expected: u32 },
    #[error("snapshot does not decode: {0}")]
    Decode(String),
    #[error("snapshot decodes to an inconsistent state: {0}")]
    Inconsistent(Violation),
}

fn encode(state: &State) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail.
    postcard::to_allocvec(state).unwrap_or_default()
}

pub(crate) fn digest(state: &State) -> Digest {
    let mut h = Hasher(xxhash_rust::xxh3::Xxh3::new());
    // Hashing cannot fail; an error could only come from a serializer refusing a value.
    let _ = postcard::serialize_with_flavor::<State, &mut Hasher, ()>(state, &mut h);
    Digest(h.0.digest128())
}

/// 64-bit hash of any serializable value's canonical encoding, without allocating it.
pub(crate) fn hash64<T: Serialize>(value: &T) -> u64 {
    let mut h = Hasher(xxhash_rust::xxh3::Xxh3::new());
    let _ = postcard::serialize_with_flavor::<T, &mut Hasher, ()>(value, &mut h);
    h.0.digest()
}

/// A postcard output that feeds a streaming hash instead of a buffer.
struct Hasher(xxhash_rust::xxh3::Xxh3);

impl postcard::ser_flavors::Flavor for &mut Hasher {
    type Output = ();

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.update(&[data]);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.update(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

pub(crate) fn snapshot(state: &State) -> Vec<u8> {
    let mut out = SNAPSHOT_VERSION.to_le_bytes().to_vec();
    out.extend_from_slice(&encode(state));
    out
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
    let state: State =
        postcard::from_bytes(body).map_err(|e| RestoreError::Decode(e.to_string()))?;
    invariants::check(&state).map_err(RestoreError::Inconsistent)?;
    Ok(state)
}
