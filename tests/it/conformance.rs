//! The conformance suite for actions, commands, typed errors and events to one client.
//!
//! Every body takes an endpoint, starts its own `Jobs` server and clients on it, and uses nothing
//! but the generated API, so each transport instantiates the same bodies (see `unix.rs`).

use std::time::Duration;

use switchboard::{
    Endpoint,
    action::{FEEDBACK_BUFFER, GoalError, GoalStatus},
    client::DEFAULT_SLOW_READER_TIMEOUT,
    error::{
        CallError, ErrorCode, MethodError, RemoteError, TransportErrorKind, names as error_names,
    },
    server::{ENDED_GOAL_OVERHEAD, PeerId, ServerOptions},
};
use switchboard_tests::jobs::{
    BadInput, CountError, JobsClient, JobsServer, LookupError, NotFound, Notice, QuotaExceeded,
};

use switchboard_tests::fixtures::{FAILING_COUNT, PANICKING_COUNT, resets_at, serve_jobs};

use crate::suite::{Link, within};

/// Hands the name of every body below to a transport's test macro (`unix_tests!`,
/// `mqtt_tests!`), after the tokens given in parentheses if any
/// (`every_body!(on_shared_broker(shared_redis;))`), so each transport runs all of them and a
/// new body is listed once.
macro_rules! every_body {
    ($runner:ident $(($($args:tt)*))?) => {
        $runner!(
            $($($args)*)?
            conformance:
            goal_accept_and_reject,
            feedback_arrives_in_order,
            cancel_before_start,
            cancel_during_run,
            cancel_after_end,
            concurrent_goals_and_limit,
            departed_client_goal_is_cancelled_after_grace,
            reattach_within_grace_keeps_goal,
            late_subscriber_gets_result,
            ended_goal_is_forgotten_after_retention,
            ended_goals_are_bounded_in_bytes,
            declared_errors_carry_fields,
            unknown_error_keeps_name_and_message,
            handler_panic_leaks_nothing,
            command_reaches_handler,
            event_to_one_client,
        );
    };
}
pub(crate) use every_body;

pub(crate) async fn serve(endpoint: &Endpoint, options: ServerOptions) -> JobsServer {
    serve_jobs(endpoint, options).await
}

async fn connect(endpoint: &Endpoint) -> JobsClient {
    within("connect", JobsClient::connect(endpoint)).await.expect("connect")
}

/// A goal is accepted and succeeds; a goal the acceptance hook refuses is rejected with the
/// declared error and its fields.
pub(crate) async fn goal_accept_and_reject(endpoint: Endpoint) {
    let _server = serve(&endpoint, ServerOptions::default()).await;
    let client = connect(&endpoint).await;
    let goal = within("send", client.count(3, 1, 0)).await.expect("accepted");
    assert_eq!(within("result", goal.result()).await.expect("succeeded"), 3);
    assert_eq!(goal.status(), GoalStatus::Succeeded);

    match within("send", client.count(-1, 1, 0)).await {
        Err(MethodError::Declared(CountError::BadInput(BadInput { field, reason }))) => {
            assert_eq!((field.as_str(), reason.as_str()), ("to", "must not be negative"));
        }
        other => panic!("expected a BadInput rejection, got {other:?}"),
    }
}

/// Every feedback arrives, in order, the first one included, before the result.
pub(crate) async fn feedback_arrives_in_order(endpoint: Endpoint) {
    let _server = serve(&endpoint, ServerOptions::default()).await;
    let client = connect(&endpoint).await;
    let mut goal = within("send", client.count(200, 0, 0)).await.expect("accepted");
    let mut seen = Vec::new();
    while let Some(feedback) = within("feedback", goal.next_feedback()).await {
        seen.push(feedback.value);
    }
    assert_eq!(seen, (1..=200).collect::<Vec<_>>());
    assert_eq!(goal.missed_feedback(), 0);
    assert_eq!(within("result", goal.result()).await.expect("succeeded"), 200);
}

/// A feedback reader that pauses while the handler sends several queues' worth: over a direct
/// link it misses nothing (a full queue holds the connection back); through a broker it misses
/// the oldest, and is told how many. The outcome is never lost either way.
pub(crate) async fn paused_feedback_reader(endpoint: Endpoint, link: Link) {
    let _server = serve(&endpoint, ServerOptions::default()).await;
    let client = connect(&endpoint).await;
    let total = 3 * FEEDBACK_BUFFER as i64;
    let mut goal = within("send", client.count(total, 0, 0)).await.expect("accepted");
    let first = within("feedback", goal.next_feedback()).await.expect("the first feedback");
    // Over a direct link nothing is ever dropped. Through a broker the queue drops its oldest
    // when full, which can happen before this task first runs on a busy machine: the feedback
    // read first is then a later one, and every one before it is counted as missed.
    match link {
        Link::Direct => assert_eq!(first.value, 1),
        Link::Brokered => {
            let dropped_before = u64::try_from(first.value - 1).expect("feedback counts from 1");
            assert!(
                goal.missed_feedback() >= dropped_before,
                "the {dropped_before} feedback before the first one read are counted as missed"
            );
        }
    }
    match link {
        // Longer than the handler needs to fill the queue, shorter than the slow-reader timeout.
        Link::Direct => tokio::time::sleep(DEFAULT_SLOW_READER_TIMEOUT / 2).await,
        // A broker cannot be held back: stay paused until the outcome is in, so that every
        // feedback has arrived (three queues' worth) however slowly a busy machine moved them.
        Link::Brokered => {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while !goal.status().is_terminal() {
                assert!(tokio::time::Instant::now() < deadline, "the goal never ended");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    let mut seen = vec![first.value];
    while let Some(feedback) = within("feedback", goal.next_feedback()).await {
        assert!(feedback.value > seen[seen.len() - 1], "feedback in order");
        seen.push(feedback.value);
    }
    assert_eq!(within("result", goal.result()).await.expect("succeeded"), total);
    let missed = goal.missed_feedback();
    match link {
        Link::Direct => {
            assert_eq!(missed, 0);
            assert_eq!(seen, (1..=total).collect::<Vec<_>>());
        }
        Link::Brokered => {
            assert!(missed > 0, "a paused reader behind a broker misses feedback, and is told");
            assert!(seen.len() as u64 + missed <= total as u64);
            assert_eq!(seen.last(), Some(&total), "the newest feedback is kept");
        }
    }
}

/// A goal cancelled before its handler started working ends cancelled, with no feedback.
pub(crate) async fn cancel_before_start(endpoint: Endpoint) {
    let _server = serve(&endpoint, ServerOptions::default()).await;
    let client = connect(&endpoint).await;
    let mut goal = within("send", client.count(5, 10, 30_000)).await.expect("accepted");
    let status = within("cancel", goal.cancel()).await.expect("cancel");
    assert_eq!(status, GoalStatus::Canceling);
    assert!(matches!(within("result", goal.result()).await, Err(GoalError::Cancelled)));
    assert_eq!(goal.status(), GoalStatus::Cancelled);
    assert!(within("feedback", goal.next_feedback()).await.is_none());
}

/// A running goal sees the cancellation and ends cancelled.
pub(crate) async fn cancel_during_run(endpoint: Endpoint) {
    let _server = serve(&endpoint, ServerOptions::default()).await;
    let client = connect(&endpoint).await;
    let mut goal = within("send", client.count(10_000, 10, 0)).await.expect("accepted");
    let first = within("feedback", goal.next_feedback()).await.expect("a feedback");
    assert_eq!(first.value, 1);
    assert_eq!(goal.status(), GoalStatus::Executing);
    within("cancel", goal.cancel()).await.expect("cancel");
    assert!(matches!(within("result", goal.result()).await, Err(GoalError::Cancelled)));
}

/// Cancelling a goal that has ended changes nothing: the answer carries the end state.
pub(crate) async fn cancel_after_end(endpoint: Endpoint) {
    let _server = serve(&endpoint, ServerOptions::default()).await;
    let client = connect(&endpoint).await;
    let goal = within("send", client.count(2, 0, 0)).await.expect("accepted");
    assert_eq!(within("result", goal.result()).await.expect("succeeded"), 2);
    assert_eq!(within("cancel", goal.cancel()).await.expect("cancel"), GoalStatus::Succeeded);
    assert_eq!(within("result", goal.result()).await.expect("still succeeded"), 2);
}

/// Several goals of one action run at once, each with its own feedback, up to the action's
/// limit; a goal over the limit is rejected with `TooManyGoals`, and a slot frees when one ends.
pub(crate) async fn concurrent_goals_and_limit(endpoint: Endpoint) {
    let _server = serve(&endpoint, ServerOptions::default().action_limit("count", 2)).await;
    let client = connect(&endpoint).await;
    let mut first = within("send", client.count(10_000, 10, 0)).await.expect("first accepted");
    let mut second = within("send", client.count(10_000, 10, 0)).await.expect("second accepted");
    assert_ne!(first.id(), second.id());
    for goal in [&mut first, &mut second] {
        let a = within("feedback", goal.next_feedback()).await.expect("a feedback").value;
        let b = within("feedback", goal.next_feedback()).await.expect("a feedback").value;
        assert_eq!((a, b), (1, 2), "each goal has its own feedback");
    }
    match within("third", client.count(1, 0, 0)).await {
        Err(MethodError::Call(CallError::Remote(error))) => {
            assert_eq!(error.name(), error_names::TOO_MANY_GOALS);
        }
        other => panic!("expected TooManyGoals, got {other:?}"),
    }
    within("cancel", first.cancel()).await.expect("cancel");
    assert!(matches!(within("first result", first.result()).await, Err(GoalError::Cancelled)));
    let third = within("send", client.count(1, 0, 0)).await.expect("a slot is free again");
    assert_eq!(within("third result", third.result()).await.expect("succeeded"), 1);
    within("cancel", second.cancel()).await.expect("cancel");
    assert!(matches!(within("second result", second.result()).await, Err(GoalError::Cancelled)));
}

const GRACE: Duration = Duration::from_millis(300);

/// The goal of a client that went away is cancelled once the grace period has passed; another
/// client attaching afterwards learns that end state.
pub(crate) async fn departed_client_goal_is_cancelled_after_grace(endpoint: Endpoint) {
    let _server = serve(&endpoint, ServerOptions::default().disconnect_grace(Some(GRACE))).await;
    let owner = connect(&endpoint).await;
    let mut goal = within("send", owner.count(10_000, 10, 0)).await.expect("accepted");
    within("feedback", goal.next_feedback()).await.expect("a feedback");
    let id = goal.id().clone();
    owner.close();
    tokio::time::sleep(GRACE * 3).await;

    let other = connect(&endpoint).await;
    let attached = within("attach", other.attach_count(id)).await.expect("still remembered");
    assert!(matches!(within("result", attached.result()).await, Err(GoalError::Cancelled)));
    assert_eq!(attached.status(), GoalStatus::Cancelled);
}

/// A connection that re-attaches within the grace period keeps the goal alive and receives the
/// rest of its feedback and its result.
pub(crate) async fn reattach_within_grace_keeps_goal(endpoint: Endpoint) {
    let _server = serve(&endpoint, ServerOptions::default().disconnect_grace(Some(GRACE))).await;
    let owner = connect(&endpoint).await;
    let steps = 12;
    let mut goal = within("send", owner.count(steps, 50, 0)).await.expect("accepted");
    within("feedback", goal.next_feedback()).await.expect("a feedback");
    let id = goal.id().clone();
    // Connected first, so the grace period covers only the attach (a brokered connect can
    // take longer than GRACE on a loaded machine).
    let other = connect(&endpoint).await;
    owner.close();

    let mut attached = within("attach", other.attach_count(id)).await.expect("attach");
    let mut last = 0;
    while let Some(feedback) = within("feedback", attached.next_feedback()).await {
        assert!(feedback.value > last, "feedback in order");
        last = feedback.value;
    }
    assert_eq!(last, steps);
    // The run outlasts the grace period several times over, so only the re-attach saved it.
    assert_eq!(within("result", attached.result()).await.expect("not cancelled"), steps);
}

/// A client that attaches after the goal ended still gets its status and result; an unknown
/// goal id is answered with `UnknownGoal`.
pub(crate) async fn late_subscriber_gets_result(endpoint: Endpoint) {
    let _server = serve(&endpoint, ServerOptions::default()).await;
    let sender = connect(&endpoint).await;
    let goal = within("send", sender.count(3, 0, 0)).await.expect("accepted");
    within("result", goal.result()).await.expect("succeeded");

    let late = connect(&endpoint).await;
    let mut attached =
        within("attach", late.attach_count(goal.id().clone())).await.expect("attach");
    assert_eq!(attached.status(), GoalStatus::Succeeded);
    assert_eq!(within("result", attached.result()).await.expect("the result"), 3);
    assert!(within("feedback", attached.next_feedback()).await.is_none());

    match within("attach", late.attach_count(switchboard::action::GoalId::random())).await {
        Err(MethodError::Call(CallError::Remote(error))) => {
            assert_eq!(error.name(), error_names::UNKNOWN_GOAL);
        }
        other => panic!("expected UnknownGoal, got {other:?}"),
    }
}

/// An ended goal is remembered for the server's retention period, then forgotten.
pub(crate) async fn ended_goal_is_forgotten_after_retention(endpoint: Endpoint) {
    const RETENTION: Duration = Duration::from_millis(500);
    let _server = serve(&endpoint, ServerOptions::default().goal_retention(RETENTION)).await;
    let sender = connect(&endpoint).await;
    let goal = within("send", sender.count(1, 0, 0)).await.expect("accepted");
    within("result", goal.result()).await.expect("succeeded");

    let other = connect(&endpoint).await;
    let attached = within("attach", other.attach_count(goal.id().clone())).await;
    assert_eq!(attached.expect("remembered within its retention").status(), GoalStatus::Succeeded);
    tokio::time::sleep(2 * RETENTION).await;
    match within("attach", other.attach_count(goal.id().clone())).await {
        Err(MethodError::Call(CallError::Remote(error))) => {
            assert_eq!(error.name(), error_names::UNKNOWN_GOAL);
        }
        other => panic!("expected UnknownGoal once the retention ran out, got {other:?}"),
    }
}

/// Issue 15, defect 4: the end states of finished goals are bounded in bytes as well as in
/// time. Past the budget the oldest are forgotten before their 60 s retention runs out, and the
/// latest are kept.
pub(crate) async fn ended_goals_are_bounded_in_bytes(endpoint: Endpoint) {
    // Each ended goal counts as its result, its id and the overhead: this budget holds three
    // of the goals below (a 36-byte id and a result of a dozen bytes), never four.
    const BUDGET: usize = 4 * ENDED_GOAL_OVERHEAD + ENDED_GOAL_OVERHEAD / 2;
    let _server = serve(&endpoint, ServerOptions::default().goal_retention_bytes(BUDGET)).await;
    let client = connect(&endpoint).await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        let goal = within("send", client.count(1, 0, 0)).await.expect("accepted");
        within("result", goal.result()).await.expect("succeeded");
        ids.push(goal.id().clone());
    }
    let other = connect(&endpoint).await;
    for (n, id) in ids.iter().enumerate() {
        let attached = within("attach", other.attach_count(id.clone())).await;
        if n < 7 {
            match attached {
                Err(MethodError::Call(CallError::Remote(error))) => {
                    assert_eq!(error.name(), error_names::UNKNOWN_GOAL, "goal {n}");
                }
                other => panic!("expected goal {n} forgotten past the byte budget, got {other:?}"),
            }
        } else {
            let attached = attached.unwrap_or_else(|e| panic!("goal {n} is kept: {e:?}"));
            assert_eq!(attached.status(), GoalStatus::Succeeded, "goal {n}");
        }
    }
}

/// Every declared error arrives as its Rust type with its fields: from a method, from a goal's
/// acceptance hook (see `goal_accept_and_reject`) and from a running goal.
pub(crate) async fn declared_errors_carry_fields(endpoint: Endpoint) {
    let _server = serve(&endpoint, ServerOptions::default()).await;
    let client = connect(&endpoint).await;
    assert_eq!(within("lookup", client.lookup("abc".into())).await.expect("found"), "ABC");
    match within("lookup", client.lookup("missing".into())).await {
        Err(MethodError::Declared(LookupError::NotFound(NotFound { key }))) => {
            assert_eq!(key, "missing");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    match within("lookup", client.lookup("quota".into())).await {
        Err(MethodError::Declared(LookupError::QuotaExceeded(quota))) => {
            assert_eq!(quota, QuotaExceeded { used: 7, limit: 5, resets_at: Some(resets_at()) });
        }
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
    let goal = within("send", client.count(FAILING_COUNT, 0, 0)).await.expect("accepted");
    match within("result", goal.result()).await {
        Err(GoalError::Declared(CountError::QuotaExceeded(quota))) => {
            assert_eq!(quota, QuotaExceeded { used: 1, limit: 1, resets_at: None });
        }
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
    assert_eq!(goal.status(), GoalStatus::Failed);
}

/// An error the client does not declare (a newer server's, say) keeps its name and message.
pub(crate) async fn unknown_error_keeps_name_and_message(endpoint: Endpoint) {
    let _server = serve(&endpoint, ServerOptions::default()).await;
    let client = connect(&endpoint).await;
    match within("lookup", client.lookup("other".into())).await {
        Err(MethodError::Call(CallError::Remote(error))) => {
            assert_eq!(
                (error.name(), error.message(), error.code()),
                ("RateLimited", "slow down", ErrorCode::ClientError)
            );
        }
        other => panic!("expected an undeclared remote error, got {other:?}"),
    }
}

fn assert_leaks_nothing(error: &RemoteError) {
    assert_eq!((error.name(), error.code()), (error_names::INTERNAL, ErrorCode::ServerError));
    assert_eq!(error.message(), "the server failed while handling the request");
    assert!(error.details().is_none());
    let text = format!("{error:?}");
    for secret in ["secret", "/srv", ".rs", "panicked", "backtrace"] {
        assert!(!text.contains(secret), "`{secret}` crossed the wire: {text}");
    }
}

/// A panicking method or goal handler gives the caller a generic `Internal` error that reveals
/// nothing, and the server keeps serving.
pub(crate) async fn handler_panic_leaks_nothing(endpoint: Endpoint) {
    let _server = serve(&endpoint, ServerOptions::default()).await;
    let client = connect(&endpoint).await;
    match within("lookup", client.lookup("panic".into())).await {
        Err(MethodError::Call(CallError::Remote(error))) => assert_leaks_nothing(&error),
        other => panic!("expected Internal, got {other:?}"),
    }
    let goal = within("send", client.count(PANICKING_COUNT, 0, 0)).await.expect("accepted");
    match within("result", goal.result()).await {
        Err(GoalError::Call(CallError::Remote(error))) => assert_leaks_nothing(&error),
        other => panic!("expected Internal, got {other:?}"),
    }
    assert_eq!(within("lookup", client.lookup("still".into())).await.expect("serving"), "STILL");
}

/// A command reaches its handler, which here announces it as a notice.
pub(crate) async fn command_reaches_handler(endpoint: Endpoint) {
    let _server = serve(&endpoint, ServerOptions::default()).await;
    let client = connect(&endpoint).await;
    let mut notices = within("subscribe", client.subscribe_notice()).await.expect("subscribe");
    within("note", client.note("hello".into(), false)).await.expect("sent");
    let notice = within("notice", notices.next()).await.expect("open").expect("a notice");
    assert_eq!(notice, Notice { text: "hello".into() });
}

/// An event to one client reaches that client only; a client that is not connected is refused.
pub(crate) async fn event_to_one_client(endpoint: Endpoint) {
    let server = serve(&endpoint, ServerOptions::default()).await;
    let alice = connect(&endpoint).await;
    let bob = connect(&endpoint).await;
    let mut to_alice = within("subscribe", alice.subscribe_notice()).await.expect("subscribe");
    let mut to_bob = within("subscribe", bob.subscribe_notice()).await.expect("subscribe");

    within("note", alice.note("for alice only".into(), true)).await.expect("sent");
    let first = within("notice", to_alice.next()).await.expect("open").expect("a notice");
    assert_eq!(first.text, "for alice only");
    within("note", bob.note("for everyone".into(), false)).await.expect("sent");
    let bobs = within("notice", to_bob.next()).await.expect("open").expect("a notice");
    assert_eq!(bobs.text, "for everyone", "bob must not see alice's notice");
    let alices = within("notice", to_alice.next()).await.expect("open").expect("a notice");
    assert_eq!(alices.text, "for everyone");

    let error =
        server.emit_notice_to(PeerId(u64::MAX), "nobody".into()).await.expect_err("no such client");
    assert_eq!(error.kind(), TransportErrorKind::NotConnected);
}
