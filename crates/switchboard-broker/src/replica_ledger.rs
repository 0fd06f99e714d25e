//! The client's ledger of load-balanced servers (`replicas=shared`): which replica said it took
//! each request in flight and which runs each goal, so that a goal's cancel and attach can go to
//! the replica that runs it, and so that when a replica is gone the requests it took and the
//! goals it ran fail at once rather than at their deadline.
//!
//! Every transport with replicas keeps one: the brokered layer, which learns of a dead replica
//! from its missing heartbeats, and MQTT, which learns of it from the replica's last will. How a
//! replica names itself and how its death is noticed is the transport's; what fails, and how, is
//! decided here once.

use std::{collections::HashMap, sync::Mutex};

use switchboard_core::{
    TransportError, action::GoalId, message::RequestId, sync::lock, transport::ClientInbox,
};

/// How many requests the ledger holds before it forgets those no longer awaited.
const TAKEN_PRUNE_AT: usize = 4096;

/// Which replica took each request in flight and which runs each goal. Replica ids are the
/// transport's (a brokered server id, an MQTT client id); the caller checks them before noting.
#[derive(Debug, Default)]
pub struct ReplicaLedger {
    state: Mutex<Ledger>,
}

#[derive(Debug, Default)]
struct Ledger {
    /// The requests in flight a replica said it took, with the replica.
    taken: HashMap<RequestId, String>,
    /// The goals a replica accepted and that have not ended, with the replica.
    goals: HashMap<GoalId, String>,
}

impl ReplicaLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that `replica` took request `id`, while the core still awaits its answer.
    pub fn taken(&self, inbox: &dyn ClientInbox, id: RequestId, replica: &str) {
        if !inbox.awaits(id) {
            return;
        }
        let mut state = lock(&self.state);
        if state.taken.len() >= TAKEN_PRUNE_AT {
            state.taken.retain(|id, _| inbox.awaits(*id));
        }
        state.taken.insert(id, replica.to_owned());
    }

    /// Forgets which replica took request `id`: its answer is here.
    pub fn answered(&self, id: RequestId) {
        lock(&self.state).taken.remove(&id);
    }

    /// Forgets every request in flight: they fail anyway (the link or the service is gone).
    pub fn forget_requests(&self) {
        lock(&self.state).taken.clear();
    }

    /// Notes an answer about `goal`: the replica it names runs the goal, and an ended goal is
    /// forgotten. An answer that names no replica leaves the ledger as it was.
    pub fn goal_answer(&self, goal: &GoalId, replica: Option<&str>, ended: bool) {
        let mut state = lock(&self.state);
        if ended {
            state.goals.remove(goal);
        } else if let Some(replica) = replica {
            state.goals.insert(goal.clone(), replica.to_owned());
        }
    }

    /// The replica that runs `goal`, if a replica said so.
    pub fn goal_replica(&self, goal: &GoalId) -> Option<String> {
        lock(&self.state).goals.get(goal).cloned()
    }

    /// True when the ledger holds a request or a goal of `replica`.
    pub fn holds(&self, replica: &str) -> bool {
        let state = lock(&self.state);
        state.taken.values().chain(state.goals.values()).any(|r| r == replica)
    }

    /// The replicas in `replicas` are gone while the link stays up: every request they took
    /// fails with a `Disconnected` transport error (it may or may not have run), and every goal
    /// they ran is lost (its outcome is unknown). `service` names the service in the messages
    /// (`Jobs instance `kitchen``), `why` says how the replicas were found gone.
    pub fn replicas_gone(
        &self,
        inbox: &dyn ClientInbox,
        replicas: &[String],
        service: &str,
        why: &str,
    ) {
        let (requests, goals) = {
            let mut state = lock(&self.state);
            let requests: Vec<(RequestId, String)> =
                state.taken.extract_if(|_, replica| replicas.contains(replica)).collect();
            let goals: Vec<(GoalId, String)> =
                state.goals.extract_if(|_, replica| replicas.contains(replica)).collect();
            (requests, goals)
        };
        for (id, replica) in requests {
            if inbox.awaits(id) {
                inbox.request_failed(
                    id,
                    TransportError::disconnected(format!(
                        "the replica {replica} of {service} that took this request is gone: {why}; it may or may not have run"
                    )),
                );
            }
        }
        for (goal, replica) in goals {
            tracing::warn!(%goal, %replica, "the replica running a goal is gone: {why}");
            inbox.goal_lost(
                &goal,
                TransportError::disconnected(format!(
                    "the replica {replica} of {service} that ran goal {goal} is gone: {why}; the goal's outcome is unknown"
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashSet, sync::Mutex};

    use switchboard_core::{
        TransportError, TransportErrorKind,
        action::GoalId,
        message::{ClientMessage, RequestId, ServerMessage},
        sync::lock,
        transport::{Backpressure, ClientInbox},
    };

    use super::ReplicaLedger;

    /// A core that awaits some requests and records what failed.
    #[derive(Default)]
    struct Recorder {
        awaited: Mutex<HashSet<RequestId>>,
        failed: Mutex<Vec<(RequestId, TransportError)>>,
        lost: Mutex<Vec<(GoalId, TransportError)>>,
    }

    impl ClientInbox for Recorder {
        fn deliver(&self, _message: ServerMessage) -> Option<Backpressure> {
            None
        }
        fn request_failed(&self, id: RequestId, error: TransportError) {
            lock(&self.awaited).remove(&id);
            lock(&self.failed).push((id, error));
        }
        fn awaits(&self, id: RequestId) -> bool {
            lock(&self.awaited).contains(&id)
        }
        fn disconnected(&self, _error: TransportError) {}
        fn goal_lost(&self, goal: &GoalId, error: TransportError) {
            lock(&self.lost).push((goal.clone(), error));
        }
        fn reconnected(&self) -> Vec<ClientMessage> {
            Vec::new()
        }
    }

    #[test]
    fn a_gone_replica_fails_what_it_took_and_nothing_else() {
        let core = Recorder::default();
        lock(&core.awaited).extend([1, 2, 3]);
        let ledger = ReplicaLedger::new();
        ledger.taken(&core, 1, "a");
        ledger.taken(&core, 2, "b");
        ledger.taken(&core, 3, "a");
        // Answered: no longer the replica's to fail.
        ledger.answered(3);
        lock(&core.awaited).remove(&3);
        // Not awaited (timed out already): not noted at all.
        ledger.taken(&core, 4, "a");
        let (running, ended, elsewhere) =
            (GoalId::from("g1"), GoalId::from("g2"), GoalId::from("g3"));
        ledger.goal_answer(&running, Some("a"), false);
        ledger.goal_answer(&ended, Some("a"), false);
        ledger.goal_answer(&ended, None, true);
        ledger.goal_answer(&elsewhere, Some("b"), false);
        assert_eq!(ledger.goal_replica(&running).as_deref(), Some("a"));
        assert!(ledger.holds("a") && ledger.holds("b") && !ledger.holds("c"));

        ledger.replicas_gone(&core, &["a".to_owned()], "Jobs instance `x`", "it died");

        let failed = lock(&core.failed);
        assert_eq!(failed.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1]);
        let (_, error) = &failed[0];
        assert_eq!(error.kind(), TransportErrorKind::Disconnected);
        assert!(error.to_string().contains("replica a of Jobs instance `x`"), "{error}");
        assert!(error.to_string().contains("it died"), "{error}");
        let lost = lock(&core.lost);
        assert_eq!(lost.iter().map(|(goal, _)| goal.clone()).collect::<Vec<_>>(), [running]);
        assert!(!ledger.holds("a"), "a gone replica is forgotten");
        ledger.forget_requests();
        // Goals outlive a lost link (they are attached to again); requests do not.
        assert_eq!(ledger.goal_replica(&elsewhere).as_deref(), Some("b"));
        ledger.goal_answer(&elsewhere, None, true);
        assert!(!ledger.holds("b"), "request 2 was forgotten with the link");
    }
}
