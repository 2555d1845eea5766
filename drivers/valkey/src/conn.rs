//! One way to send a command to the node that owns a partition, for a standalone
//! server and for a cluster alike.

use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
use redis::{Cmd, RedisResult, Value};

#[derive(Clone)]
pub(crate) enum Conn {
    /// Reconnects by itself after the server restarts.
    Standalone(Box<ConnectionManager>),
    /// Follows slot moves and failovers by itself.
    Cluster(ClusterConnection),
}

impl Conn {
    /// Sends `cmd` to the primary owning `key`'s slot. Commands whose keys the client
    /// library cannot find (FCALL, WAIT) are routed here explicitly.
    pub(crate) async fn to_owner(&self, key: &str, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Conn::Standalone(conn) => cmd.query_async(&mut ConnectionManager::clone(conn)).await,
            Conn::Cluster(conn) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                // A routed command hands a server's error reply back as a value.
                conn.clone()
                    .route_command(cmd.clone(), routing)
                    .await
                    .and_then(Value::extract_error)
            }
        }
    }

    /// Sends `cmd` to every primary and succeeds only if all of them do.
    pub(crate) async fn to_all_primaries(&self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Conn::Standalone(conn) => cmd.query_async(&mut ConnectionManager::clone(conn)).await,
            Conn::Cluster(conn) => {
                let routing = RoutingInfo::MultiNode((
                    MultipleNodeRoutingInfo::AllMasters,
                    Some(ResponsePolicy::AllSucceeded),
                ));
                conn.clone()
                    .route_command(cmd.clone(), routing)
                    .await
                    .and_then(Value::extract_error)
            }
        }
    }
}
