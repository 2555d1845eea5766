//! Key names. Every key of a partition carries the hash tag `{p<N>}`, so a Valkey
//! Cluster places all of them in one slot (every function call stays single-slot) and
//! spreads different partitions over the shards.

use keel_log::Partition;

/// The keys of one partition, in the order the library's functions take them.
pub struct PartitionKeys {
    /// The last granted epoch.
    pub epoch: String,
    /// The current holder and its expiry.
    pub lease: String,
    /// The list of records: batch frames (entry frames, in a log written by library 1).
    pub log: String,
    /// The first offset still held after trimming.
    pub first: String,
    /// The latest snapshot.
    pub snapshot: String,
    /// The sorted set of the offsets the log's records start at.
    pub starts: String,
    /// The offset after the last entry.
    pub end: String,
}

impl PartitionKeys {
    /// The keys of `partition` under `prefix`, all in one hash slot.
    pub fn new(prefix: &str, partition: Partition) -> PartitionKeys {
        let key = |name: &str| format!("{prefix}:{{p{partition}}}:{name}");
        PartitionKeys {
            epoch: key("epoch"),
            lease: key("lease"),
            log: key("log"),
            first: key("first"),
            snapshot: key("snapshot"),
            starts: key("starts"),
            end: key("end"),
        }
    }

    /// Every key, in the order the library's functions take them.
    pub fn all(&self) -> [&str; 7] {
        [
            &self.epoch,
            &self.lease,
            &self.log,
            &self.first,
            &self.snapshot,
            &self.starts,
            &self.end,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::cluster_routing::Slot;

    #[test]
    fn a_partition_lives_in_one_slot_and_partitions_spread() {
        let slot = |p| {
            let keys = PartitionKeys::new("keel", p);
            let slots: Vec<Slot> = keys.all().iter().map(Slot::for_key).collect();
            assert!(
                slots.windows(2).all(|w| w[0] == w[1]),
                "partition {p}: {slots:?}"
            );
            slots[0]
        };
        let mut slots: Vec<Slot> = Vec::new();
        for p in 0..64 {
            let s = slot(p);
            if !slots.contains(&s) {
                slots.push(s);
            }
        }
        assert!(
            slots.len() > 60,
            "64 partitions land in {} slots",
            slots.len()
        );
        assert_eq!(PartitionKeys::new("keel", 7).log, "keel:{p7}:log");
    }
}
