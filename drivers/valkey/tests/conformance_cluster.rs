//! The Valkey log on a three-primary Valkey Cluster passes the shared conformance
//! suite; each case gets its own cluster.

use keel_valkey::{ValkeyCluster, ValkeyLog, ValkeyOptions};

keel_log::conformance_tests!(async {
    let cluster = ValkeyCluster::start();
    let log = ValkeyLog::connect_cluster(&cluster.urls(), ValkeyOptions::default())
        .await
        .expect("connect to the cluster");
    (log, cluster)
});
