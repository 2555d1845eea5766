//! Streaming edges between the wire and the engine: every policy and backpressure
//! choice spelt out, an unset one refused naming its field rather than guessed.

use crate::proto;
use crate::validate::invalid;
use keel_engine::{EdgePolicy, OnFull, StreamEdge};
use proto::stream_edge::{OnFull as WireFull, Policy as WirePolicy};
use tonic::Status;

/// A task's streaming edges for the wire.
pub(crate) fn edges_to_proto(edges: &[StreamEdge]) -> Vec<proto::StreamEdge> {
    edges
        .iter()
        .map(|e| {
            let (policy, capacity, on_full) = match e.policy {
                EdgePolicy::Fifo => (WirePolicy::Fifo, 0, WireFull::Unspecified),
                EdgePolicy::Newest => (WirePolicy::Newest, 0, WireFull::Unspecified),
                EdgePolicy::Broadcast => (WirePolicy::Broadcast, 0, WireFull::Unspecified),
                EdgePolicy::Bounded { capacity, on_full } => (
                    WirePolicy::Bounded,
                    capacity,
                    match on_full {
                        OnFull::Block => WireFull::Block,
                        OnFull::DropOldest => WireFull::DropOldest,
                        OnFull::Error => WireFull::Error,
                    },
                ),
            };
            proto::StreamEdge {
                from: e.from.clone(),
                policy: policy as i32,
                capacity,
                on_full: on_full as i32,
            }
        })
        .collect()
}

/// A task's streaming edges from the wire; `field` names the list in errors.
pub(crate) fn edges_from_proto(
    edges: Vec<proto::StreamEdge>,
    field: &str,
) -> Result<Vec<StreamEdge>, Status> {
    edges
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let at = |name: &str| format!("{field}[{i}].{name}");
            let policy =
                match WirePolicy::try_from(e.policy) {
                    Ok(WirePolicy::Fifo) => EdgePolicy::Fifo,
                    Ok(WirePolicy::Newest) => EdgePolicy::Newest,
                    Ok(WirePolicy::Broadcast) => EdgePolicy::Broadcast,
                    Ok(WirePolicy::Bounded) => {
                        EdgePolicy::Bounded {
                            capacity: e.capacity,
                            on_full: match WireFull::try_from(e.on_full) {
                                Ok(WireFull::Block) => OnFull::Block,
                                Ok(WireFull::DropOldest) => OnFull::DropOldest,
                                Ok(WireFull::Error) => OnFull::Error,
                                Ok(WireFull::Unspecified) | Err(_) => return Err(invalid(
                                    &at("on_full"),
                                    "must be ON_FULL_BLOCK, ON_FULL_DROP_OLDEST or ON_FULL_ERROR",
                                )),
                            },
                        }
                    }
                    Ok(WirePolicy::Unspecified) | Err(_) => return Err(invalid(
                        &at("policy"),
                        "must be POLICY_FIFO, POLICY_BOUNDED, POLICY_NEWEST or POLICY_BROADCAST",
                    )),
                };
            Ok(StreamEdge {
                from: e.from,
                policy,
            })
        })
        .collect()
}
