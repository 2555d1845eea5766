//! The coordinator's log entry: one engine input and the logical time it was applied
//! at. Encoded as a version byte followed by postcard; the record frame around it adds
//! the checksum.

use crate::error::{Corruption, LogError, RecordRef};
use crate::{Offset, Partition};
use keel_engine::{Input, Time};
use serde::{Deserialize, Serialize};

/// Encoding version of [`Entry`] payloads written by this build (version 2: task rate
/// keys and rate limits in the configuration; version 3: task stream modes and the
/// `Emit` command; version 4: the per-job stream limit in the configuration; version 5:
/// streaming edges in task specs and the `Ack` command). An entry of another version is
/// refused by name rather than decoded into the wrong shape.
pub const ENTRY_VERSION: u8 = 5;

/// One logged step: replaying entries in order through `Engine::apply` rebuilds the
/// coordinator's state exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The engine time the input was applied at.
    pub now: Time,
    /// The input applied.
    pub input: Input,
}

impl Entry {
    /// An entry for `input` applied at `now`.
    pub fn new(now: Time, input: Input) -> Entry {
        Entry { now, input }
    }

    /// The payload to append: the version byte, then postcard.
    pub fn encode(&self) -> Vec<u8> {
        // Sized first, so a large output is copied once rather than regrown.
        let size = postcard::experimental::serialized_size(self).unwrap_or(0);
        let mut out = Vec::with_capacity(1 + size);
        out.push(ENTRY_VERSION);
        // Writing plain serde data into a Vec cannot fail.
        postcard::to_extend(self, out).unwrap_or_else(|_| vec![ENTRY_VERSION])
    }

    /// Decodes the payload of the entry at `offset`, naming it if it does not decode.
    pub fn decode(partition: Partition, offset: Offset, payload: &[u8]) -> Result<Entry, LogError> {
        let fail = |corruption| LogError::corrupt(partition, RecordRef::Entry(offset), corruption);
        match payload.split_first() {
            None => Err(fail(Corruption::Truncated { len: 0 })),
            Some((&ENTRY_VERSION, body)) => match postcard::from_bytes::<Entry>(body) {
                Ok(entry) => Ok(entry),
                Err(e) => Err(fail(Corruption::Payload(e.to_string()))),
            },
            Some((&version, _)) => Err(fail(Corruption::Version(version))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::{ClientCommand, JobSpec, TaskSpec};

    #[test]
    fn round_trips_and_names_undecodable_entries() {
        let entry = Entry::new(
            42,
            Input::Client(ClientCommand::SubmitJob(JobSpec::new(
                "j",
                vec![TaskSpec::new("a")],
            ))),
        );
        let bytes = entry.encode();
        assert_eq!(Entry::decode(0, 0, &bytes).unwrap(), entry);
        let err = Entry::decode(3, 17, &bytes[..bytes.len() / 2]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("partition 3, entry 17: undecodable payload"),
            "{err}"
        );
        let mut future = bytes.clone();
        future[0] = 6;
        assert_eq!(
            Entry::decode(3, 17, &future).unwrap_err().to_string(),
            "partition 3, entry 17: unknown format version 6"
        );
        // An entry of an earlier encoding (before streaming edges, the stream limit,
        // stream modes or rate keys) is refused by name, not decoded into the new shape.
        for version in [1, 2, 3, 4] {
            let mut older = bytes.clone();
            older[0] = version;
            assert_eq!(
                Entry::decode(3, 17, &older).unwrap_err().to_string(),
                format!("partition 3, entry 17: unknown format version {version}")
            );
        }
        assert!(Entry::decode(3, 17, &[]).is_err());
    }
}
