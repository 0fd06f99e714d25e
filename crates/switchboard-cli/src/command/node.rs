//! `switchboard node publish|subscribe|call`: commlib-py-style nodes from a script, through the
//! node API (`switchboard::node`), over any URL. Messages, requests and replies are JSON objects.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::{Endpoint, node::Node};

use crate::{
    cli::{
        ConnectArgs, NodeCallArgs, NodeCommand, NodeConnectArgs, NodePublishArgs, NodeSubscribeArgs,
    },
    command::remote::stop_requested,
    exit::Failure,
    session,
};

/// The name of the node the command acts as; it runs no heartbeats and serves nothing.
const NODE_NAME: &str = "switchboard_cli";

/// How long `node call` waits for a reply unless `--timeout` says otherwise.
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a `node` verb.
pub(crate) async fn run(command: &NodeCommand) -> Result<(), Failure> {
    match command {
        NodeCommand::Publish(args) => publish(args).await,
        NodeCommand::Subscribe(args) => subscribe(args).await,
        NodeCommand::Call(args) => call(args).await,
    }
}

/// The node on the URL `--connect` (or `$SWITCHBOARD_URL`) names, its waits cut to `--timeout`.
fn node(conn: &NodeConnectArgs) -> Result<Node, Failure> {
    let conn = ConnectArgs {
        connect: conn.connect.clone(),
        interface: None,
        format: None,
        timeout: conn.timeout,
    };
    let endpoint: Endpoint = session::endpoint(&conn, None)?;
    Ok(Node::new(NODE_NAME, endpoint))
}

/// `text` as a JSON object, or a usage error naming `what`.
fn object(what: &str, text: &str) -> Result<Value, Failure> {
    let value: Value = serde_json::from_str(text)
        .map_err(|error| Failure::Usage(format!("{what} is not valid JSON: {error}")))?;
    if !value.is_object() {
        return Err(Failure::Usage(format!(
            "{what} must be a JSON object (commlib-py messages are), not `{value}`"
        )));
    }
    Ok(value)
}

/// Checks a topic or RPC name: dotted segments, none empty, none with whitespace or any of
/// `* > # + / ? [ ]` (wildcards only in a pattern, `*` as a whole segment and `>` or `*` last).
pub(crate) fn check_name(what: &str, name: &str, pattern: bool) -> Result<(), Failure> {
    let bad = |why: &str| Err(Failure::Usage(format!("{what} `{name}`: {why}")));
    if name.is_empty() {
        return bad("is empty");
    }
    let segments: Vec<&str> = name.split('.').collect();
    for (at, segment) in segments.iter().enumerate() {
        if segment.is_empty() {
            return bad("has an empty segment (use `a.b`, not `a..b`, `.a` or `a.`)");
        }
        let last = at + 1 == segments.len();
        if pattern && (*segment == "*" || (*segment == ">" && last)) {
            continue;
        }
        if let Some(c) =
            segment.chars().find(|c| c.is_whitespace() || "*>#+/?[]".contains(*c) || c.is_control())
        {
            return bad(&if pattern && (c == '*' || c == '>') {
                format!(
                    "`{c}` must be a whole segment (`*` for one segment, a last `*` or `>` for the rest)"
                )
            } else if c == '*' || c == '>' {
                format!("has the wildcard `{c}`; only `node subscribe` takes patterns")
            } else {
                format!("has {c:?}, which names cannot hold")
            });
        }
    }
    Ok(())
}

/// `switchboard node publish TOPIC JSON`.
async fn publish(args: &NodePublishArgs) -> Result<(), Failure> {
    check_name("topic", &args.topic, false)?;
    let message = object("the message", &args.json)?;
    let node = node(&args.conn)?;
    let publisher = node.publisher::<Value>(&args.topic).await?;
    let published = publisher.publish(&message).await;
    // Stopping waits until the message has left: the process ends right after.
    publisher.stop().await;
    published?;
    Ok(())
}

/// `switchboard node subscribe PATTERN`: one JSON line per message, with its topic.
async fn subscribe(args: &NodeSubscribeArgs) -> Result<(), Failure> {
    let stop = stop_requested();
    check_name("pattern", &args.pattern, true)?;
    let node = node(&args.conn)?;
    let mut subscriber = node.pattern_subscriber::<Value>(&args.pattern).await?;
    let timeout = async {
        match args.conn.timeout {
            Some(timeout) => tokio::time::sleep(timeout).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timeout);
    tokio::pin!(stop);
    let mut seen = 0u64;
    loop {
        if args.count.is_some_and(|n| seen >= n) {
            break;
        }
        tokio::select! {
            next = subscriber.next() => match next {
                Some(Ok(received)) => {
                    seen += 1;
                    println!("{}", json!({ "topic": received.topic, "message": received.message }));
                }
                Some(Err(error)) => eprintln!("warning: {error}"),
                None => return Err(Failure::Transport("the connection was closed".to_owned())),
            },
            // Listening for as long as `--timeout` said is what was asked: a success.
            () = &mut timeout => break,
            () = &mut stop => break,
        }
    }
    Ok(())
}

/// `switchboard node call NAME JSON`: prints the reply object.
async fn call(args: &NodeCallArgs) -> Result<(), Failure> {
    check_name("RPC name", &args.name, false)?;
    let request = object("the request", &args.json)?;
    let node = node(&args.conn)?;
    let client = node.rpc_client::<Value, Value>(&args.name).await?;
    let timeout = args.conn.timeout.unwrap_or(DEFAULT_CALL_TIMEOUT);
    let reply = client.call_within(&request, timeout).await?;
    println!("{reply}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_patterns_are_checked() {
        for good in ["a", "sensors.front", "demo.add_two_ints", "a-b.c_d"] {
            assert!(check_name("topic", good, false).is_ok(), "{good}");
            assert!(check_name("pattern", good, true).is_ok(), "{good}");
        }
        for good in ["sensors.*", "*", "sensors.*.temp", "sensors.>", ">"] {
            assert!(check_name("pattern", good, true).is_ok(), "{good}");
        }
        let message = |name: &str, pattern: bool| match check_name("topic", name, pattern) {
            Err(Failure::Usage(message)) => message,
            other => panic!("{name}: {other:?}"),
        };
        assert!(message("", false).contains("is empty"));
        assert!(message("a..b", false).contains("empty segment"));
        assert!(message("a.", true).contains("empty segment"));
        assert!(message("a b", false).contains("' '"));
        assert!(message("a/b", false).contains("'/'"));
        assert!(message("a.*", false).contains("only `node subscribe` takes patterns"));
        assert!(message("a*", true).contains("must be a whole segment"));
        assert!(message("a.>.b", true).contains("must be a whole segment"));
    }

    #[test]
    fn messages_must_be_json_objects() {
        assert_eq!(object("m", r#"{"a":1}"#).expect("an object"), json!({"a": 1}));
        for (text, expected) in [("{", "not valid JSON"), ("[1]", "must be a JSON object")] {
            match object("m", text) {
                Err(Failure::Usage(message)) => assert!(message.contains(expected), "{message}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
