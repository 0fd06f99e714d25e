//! The names of a node's endpoints (`switchboard::node`, `Naming::Node`), which are
//! commlib-py's (`docs/commlib.md`): an RPC's queue and a topic are their names (dotted
//! segments), a node's heartbeats and control RPCs and an action's RPCs and topics are named
//! after the node or action with a fixed last segment, and a call's reply queue is `rpc-` and 32
//! hex digits. Every transport uses these names; the brokered layer uses them as addresses as
//! they are (MQTT's node bus turns `.` into `/`).

use crate::broker::{Address, Delivery};

/// An RPC: its name is its queue.
pub const RPC: Address = Address {
    key: "nodeRpc",
    template: "{name}",
    delivery: Delivery::Queue,
    carries: "the requests of a node's RPC",
};
/// A topic: its name.
pub const TOPIC: Address = Address {
    key: "nodeTopic",
    template: "{name}",
    delivery: Delivery::Topic,
    carries: "a node's publications",
};
/// The reply queue of one call, as commlib-py names its own: `rpc-` and 32 hex digits.
pub const REPLY_QUEUE_PREFIX: &str = "rpc-";
/// A node's heartbeats go to `<node name>` and this suffix.
pub const HEARTBEAT: &str = "heartbeat";
/// A node's control RPCs (commlib-py's `ctrl_services`): `<node name>.start` and
/// `<node name>.stop`.
pub const CONTROL_RPCS: [&str; 2] = ["start", "stop"];
/// An action `X` is three RPCs, `X.send_goal`, `X.cancel_goal` and `X.get_result`.
pub const ACTION_RPCS: [&str; 3] = [SEND_GOAL, CANCEL_GOAL, GET_RESULT];
/// The RPC that starts a goal.
pub const SEND_GOAL: &str = "send_goal";
/// The RPC that cancels a goal.
pub const CANCEL_GOAL: &str = "cancel_goal";
/// The RPC that reads a goal's status and result.
pub const GET_RESULT: &str = "get_result";
/// The topic `X.status` of action `X`: every goal's status changes.
pub const ACTION_STATUS: &str = "status";
/// The topic `X.feedback` of action `X`: every goal's feedback.
pub const ACTION_FEEDBACK: &str = "feedback";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_segments() {
        let suffixes = [HEARTBEAT, ACTION_STATUS, ACTION_FEEDBACK];
        let suffixes = suffixes.iter().chain(&CONTROL_RPCS).chain(&ACTION_RPCS);
        for suffix in suffixes {
            assert!(!suffix.is_empty() && !suffix.contains(['.', '*', '>', '/']), "{suffix}");
        }
        assert_eq!(RPC.placeholders().collect::<Vec<_>>(), ["name"]);
        assert_eq!((RPC.delivery, TOPIC.delivery), (Delivery::Queue, Delivery::Topic));
    }
}
