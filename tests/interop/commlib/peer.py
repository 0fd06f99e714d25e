"""commlib-py 0.13.2 as a peer of a switchboard service, for tests/it/commlib.rs.

    peer.py call TRANSPORT HOST PORT RPC_NAME JSON [TIMEOUT]
                                                     prints `answer ` and the answer's data as
                                                     JSON (`null` when commlib-py's call timed out
                                                     on Redis or AMQP), or `timeout` when its call
                                                     raised a timeout (MQTT)
    peer.py subscribe TRANSPORT HOST PORT TOPIC N    prints `ready`, then `message ` and each of
                                                     N messages as JSON, and exits
    peer.py psubscribe TRANSPORT HOST PORT PATTERN N like subscribe, with a PSubscriber: each
                                                     line is `message {"topic":…,"data":…}`
    peer.py serve TRANSPORT HOST PORT RPC_NAME SECONDS
                                                     serves RPC_NAME for SECONDS, printing
                                                     `ready` once it runs: it answers
                                                     {"c": a + b}; a request with "raise" raises
                                                     ValueError, one with "crash" a
                                                     ZeroDivisionError, one with "sleep" sleeps
                                                     that many seconds first
    peer.py node TRANSPORT HOST PORT NODE_NAME SECONDS
                                                     runs a node with heartbeats every 0.2 s and
                                                     its control RPCs for SECONDS, printing
                                                     `ready` once it runs
    peer.py goal TRANSPORT HOST PORT ACTION JSON CANCEL_AFTER
                                                     sends the goal JSON with an ActionClient and
                                                     prints `accepted {"status":…,"goal_id":…}`,
                                                     `feedback ` and each feedback, then (after
                                                     cancelling CANCEL_AFTER seconds in, when it
                                                     is not negative, printing `cancel
                                                     {"status":…}`) `result {"status":…,
                                                     "result":…}` once the goal has ended
    peer.py action TRANSPORT HOST PORT ACTION SECONDS
                                                     serves ACTION for SECONDS with an
                                                     ActionService, printing `ready`: a goal
                                                     {"steps": n} sends the feedback {"step": i}
                                                     every 0.2 s (the first at once) and ends
                                                     with {"done": n}, or early when cancelled
    peer.py publish TRANSPORT HOST PORT - JSON       publishes each [topic, message] pair of the
                                                     JSON list, in order, with a Publisher per
                                                     topic (commlib-py's MPublisher cannot be
                                                     made on AMQP), then prints `published`

commlib-py logs to standard output too, hence the prefixes.

TRANSPORT is `redis`, `amqp` (guest/guest) or `mqtt`. Nothing but commlib-py's public API is
used.
"""

import json
import os
import sys
import threading
import time

from commlib.msg import ActionMessage
from commlib.node import Node


class Steps(ActionMessage):
    class Goal(ActionMessage.Goal):
        steps: int = 0

    class Result(ActionMessage.Result):
        done: int = 0

    class Feedback(ActionMessage.Feedback):
        step: int = 0


def node(transport: str, host: str, port: int, **options) -> Node:
    if transport == "redis":
        from commlib.transports.redis import ConnectionParameters

        params = ConnectionParameters(host=host, port=port)
    elif transport == "amqp":
        from commlib.transports.amqp import ConnectionParameters

        params = ConnectionParameters(host=host, port=port)
    elif transport == "mqtt":
        from commlib.transports.mqtt import ConnectionParameters

        params = ConnectionParameters(host=host, port=port)
    else:
        raise SystemExit(f"unknown transport {transport!r}")
    options.setdefault("node_name", "switchboard_probe")
    options.setdefault("heartbeats", False)
    return Node(connection_params=params, **options)


def call(transport: str, host: str, port: int, rpc_name: str, data: str, timeout: float) -> None:
    client = node(transport, host, port).create_rpc_client(rpc_name=rpc_name)
    client.run()
    try:
        answer = client.call(json.loads(data), timeout=timeout)
    except Exception as error:  # commlib-py's MQTT client raises RPCClientTimeoutError
        if "Timeout" not in type(error).__name__:
            raise
        print("timeout", flush=True)
    else:
        print("answer", json.dumps(answer), flush=True)
    client.stop()


def subscribe(transport: str, host: str, port: int, topic: str, count: int) -> None:
    done = threading.Event()
    seen = []

    def on_message(message) -> None:
        seen.append(message)
        print("message", json.dumps(message), flush=True)
        if len(seen) >= count:
            done.set()

    subscriber = node(transport, host, port).create_subscriber(topic=topic, on_message=on_message)
    subscriber.run()
    # commlib-py gives no sign that its subscription is in place; give it a moment.
    time.sleep(0.5)
    print("ready", flush=True)
    done.wait(timeout=20)
    subscriber.stop()


def psubscribe(transport: str, host: str, port: int, pattern: str, count: int) -> None:
    done = threading.Event()
    seen = []

    def on_message(message, topic) -> None:
        seen.append(message)
        print("message", json.dumps({"topic": topic, "data": message}), flush=True)
        if len(seen) >= count:
            done.set()

    subscriber = node(transport, host, port).create_psubscriber(
        topic=pattern, on_message=on_message
    )
    subscriber.run()
    time.sleep(0.5)
    print("ready", flush=True)
    done.wait(timeout=20)
    subscriber.stop()


def serve(transport: str, host: str, port: int, rpc_name: str, seconds: float) -> None:
    def on_request(request):
        if "sleep" in request:
            time.sleep(float(request["sleep"]))
        if "raise" in request:
            raise ValueError("asked to raise")
        if "crash" in request:
            raise ZeroDivisionError("asked to crash")
        return {"c": request.get("a", 0) + request.get("b", 0)}

    service = node(transport, host, port).create_rpc(rpc_name=rpc_name, on_request=on_request)
    service.run()
    time.sleep(0.5)
    print("ready", flush=True)
    time.sleep(seconds)
    # Stopping a Redis service waits out its 10 s BLPOP; nothing is left to say.
    os._exit(0)


def run_node(transport: str, host: str, port: int, name: str, seconds: float) -> None:
    the_node = node(
        transport,
        host,
        port,
        node_name=name,
        heartbeats=True,
        heartbeat_interval=0.2,
        ctrl_services=True,
    )
    the_node.run(wait=True)
    print("ready", flush=True)
    time.sleep(seconds)
    # commlib-py's Node.stop() returns early once its stop RPC ran, and its heartbeats go on.
    os._exit(0)


def goal(transport: str, host: str, port: int, action: str, data: str, cancel_after: float):
    def on_feedback(feedback) -> None:
        print("feedback", json.dumps(feedback), flush=True)

    client = node(transport, host, port).create_action_client(
        action_name=action, on_feedback=on_feedback
    )
    client.run()
    time.sleep(0.5)
    accepted = client.send_goal(json.loads(data))
    print(
        "accepted", json.dumps({"status": accepted.status, "goal_id": accepted.goal_id}), flush=True
    )
    if cancel_after >= 0:
        time.sleep(cancel_after)
        cancelled = client.cancel_goal()
        print("cancel", json.dumps({"status": cancelled.status}), flush=True)
    result = client.get_result(wait=True, wait_max_sec=10)
    # The terminal status arrives on the status topic around the same time as the result.
    time.sleep(0.3)
    print("result", json.dumps({"status": int(client.status.status), "result": result}), flush=True)
    os._exit(0)


def serve_action(transport: str, host: str, port: int, action: str, seconds: float) -> None:
    def on_goal(goal_handle):
        done = 0
        for step in range(goal_handle.data.steps):
            if goal_handle.cancel_event.is_set():
                break
            goal_handle.send_feedback(Steps.Feedback(step=step))
            done = step + 1
            time.sleep(0.2)
        return Steps.Result(done=done)

    service = node(transport, host, port).create_action(
        action_name=action, msg_type=Steps, on_goal=on_goal
    )
    service.run()
    time.sleep(0.5)
    print("ready", flush=True)
    time.sleep(seconds)
    os._exit(0)


def publish(transport: str, host: str, port: int, pairs: str) -> None:
    the_node = node(transport, host, port)
    publishers = {}
    for topic, message in json.loads(pairs):
        if topic not in publishers:
            publishers[topic] = the_node.create_publisher(topic=topic)
            publishers[topic].run()
        publishers[topic].publish(message)
    # pika's AMQP publisher writes from a thread of its own, and stopping it may lose what it
    # has not written yet: give it time, then leave.
    time.sleep(1.0)
    print("published", flush=True)
    os._exit(0)


if __name__ == "__main__":
    verb, transport, host, port, name, rest = sys.argv[1:7]
    if verb == "call":
        timeout = float(sys.argv[7]) if len(sys.argv) > 7 else 5.0
        call(transport, host, int(port), name, rest, timeout)
    elif verb == "subscribe":
        subscribe(transport, host, int(port), name, int(rest))
    elif verb == "psubscribe":
        psubscribe(transport, host, int(port), name, int(rest))
    elif verb == "serve":
        serve(transport, host, int(port), name, float(rest))
    elif verb == "node":
        run_node(transport, host, int(port), name, float(rest))
    elif verb == "action":
        serve_action(transport, host, int(port), name, float(rest))
    elif verb == "goal":
        goal(transport, host, int(port), name, rest, float(sys.argv[7]))
    elif verb == "publish":
        publish(transport, host, int(port), rest)
    else:
        raise SystemExit(f"unknown verb {verb!r}")
