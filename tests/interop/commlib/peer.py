"""commlib-py 0.13.2 as a peer of a switchboard service, for tests/it/commlib.rs.

    peer.py call TRANSPORT HOST PORT RPC_NAME JSON   prints `answer ` and the answer's data as
                                                     JSON (`null` when commlib-py's call timed out)
    peer.py subscribe TRANSPORT HOST PORT TOPIC N    prints `ready`, then `message ` and each of
                                                     N messages as JSON, and exits

commlib-py logs to standard output too, hence the prefixes.

TRANSPORT is `redis` or `amqp` (guest/guest). Nothing but commlib-py's public API is used.
"""

import json
import sys
import threading
import time

from commlib.node import Node


def node(transport: str, host: str, port: int) -> Node:
    if transport == "redis":
        from commlib.transports.redis import ConnectionParameters

        params = ConnectionParameters(host=host, port=port)
    elif transport == "amqp":
        from commlib.transports.amqp import ConnectionParameters

        params = ConnectionParameters(host=host, port=port)
    else:
        raise SystemExit(f"unknown transport {transport!r}")
    return Node(node_name="switchboard_probe", connection_params=params, heartbeats=False)


def call(transport: str, host: str, port: int, rpc_name: str, data: str) -> None:
    client = node(transport, host, port).create_rpc_client(rpc_name=rpc_name)
    client.run()
    answer = client.call(json.loads(data), timeout=5)
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


if __name__ == "__main__":
    verb, transport, host, port, name, rest = sys.argv[1:7]
    if verb == "call":
        call(transport, host, int(port), name, rest)
    elif verb == "subscribe":
        subscribe(transport, host, int(port), name, int(rest))
    else:
        raise SystemExit(f"unknown verb {verb!r}")
