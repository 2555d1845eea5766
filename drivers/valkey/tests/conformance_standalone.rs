//! The Valkey log on a standalone server passes the shared conformance suite; each case
//! gets its own server.

use keel_valkey::server::ValkeyServer;
use keel_valkey::{ValkeyLog, ValkeyOptions};

keel_log::conformance_tests!(async {
    let server = ValkeyServer::start();
    let log = ValkeyLog::connect(&server.url(), ValkeyOptions::default())
        .await
        .expect("connect to valkey");
    (log, server)
});
