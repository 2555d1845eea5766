//! A three-primary Valkey Cluster on loopback for tests, formed by hand with
//! CLUSTER ADDSLOTSRANGE and CLUSTER MEET; every node dies with the handle.

use crate::server::{Fsync, ValkeyServer};
use std::time::{Duration, Instant};

/// Three cluster-mode servers owning all 16384 slots between them.
pub struct ValkeyCluster {
    /// The primaries, so a test can kill or restart one.
    pub nodes: Vec<ValkeyServer>,
}

impl ValkeyCluster {
    /// Starts and forms the cluster, panicking with the reason if it cannot (tests only).
    pub fn start() -> ValkeyCluster {
        let nodes: Vec<ValkeyServer> = (0..3)
            .map(|_| ValkeyServer::start_with(Fsync::Always, true))
            .collect();
        let ranges = [(0, 5_460), (5_461, 10_922), (10_923, 16_383)];
        for (node, (from, to)) in nodes.iter().zip(ranges) {
            let mut conn = node.admin();
            redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(from)
                .arg(to)
                .query::<()>(&mut conn)
                .expect("ADDSLOTSRANGE");
        }
        let mut first = nodes[0].admin();
        for node in &nodes[1..] {
            redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(node.port())
                .query::<()>(&mut first)
                .expect("CLUSTER MEET");
        }
        let cluster = ValkeyCluster { nodes };
        cluster.wait_until_formed();
        cluster
    }

    /// Every node's URL, as a cluster client's seed list.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(ValkeyServer::url).collect()
    }

    /// Waits until every node reports the cluster healthy and knows all three nodes.
    fn wait_until_formed(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let formed = self.nodes.iter().all(|node| {
                let mut conn = node.admin();
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut conn)
                    .unwrap_or_default();
                info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3")
            });
            if formed {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the valkey cluster did not form within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
