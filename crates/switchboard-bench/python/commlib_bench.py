"""commlib-py RPC peer for switchboard-bench row 9.

Usage: commlib_bench.py server mqtt|redis|amqp NAME
       commlib_bench.py client mqtt|redis|amqp NAME CALLS
The server prints `ready`; the client prints one JSON line with p50/p99 in microseconds.
"""

import json
import sys
import time

from commlib.msg import RPCMessage
from commlib.node import Node


class AddRPC(RPCMessage):
    class Request(RPCMessage.Request):
        a: int = 0
        b: int = 0

    class Response(RPCMessage.Response):
        c: int = 0


def params(kind):
    if kind == "mqtt":
        from commlib.transports.mqtt import ConnectionParameters

        return ConnectionParameters(host="127.0.0.1", port=1883)
    if kind == "amqp":
        from commlib.transports.amqp import ConnectionParameters

        return ConnectionParameters(host="127.0.0.1", port=5672)
    from commlib.transports.redis import ConnectionParameters

    return ConnectionParameters(host="127.0.0.1", port=6379)


def main():
    role, kind, name = sys.argv[1], sys.argv[2], sys.argv[3]
    node = Node(node_name=f"bench-{role}-{name}", connection_params=params(kind), heartbeats=False)
    if role == "server":
        node.create_rpc(
            msg_type=AddRPC,
            rpc_name=f"bench.{name}.add",
            on_request=lambda msg: AddRPC.Response(c=msg.a + msg.b),
        )
        node.run()
        time.sleep(1.0)
        print("ready", flush=True)
        while True:
            time.sleep(1)
    calls = int(sys.argv[4])
    client = node.create_rpc_client(msg_type=AddRPC, rpc_name=f"bench.{name}.add")
    node.run()
    time.sleep(0.5)
    for _ in range(min(200, calls)):
        client.call(AddRPC.Request(a=1, b=2), timeout=10)
    samples = []
    for i in range(calls):
        start = time.perf_counter_ns()
        reply = client.call(AddRPC.Request(a=i, b=2), timeout=10)
        samples.append(time.perf_counter_ns() - start)
        assert reply.c == i + 2
    samples.sort()
    q = lambda p: samples[max(0, int(len(samples) * p + 0.999999) - 1)] / 1000.0  # noqa: E731
    print(json.dumps({"p50": q(0.5), "p99": q(0.99), "n": calls}), flush=True)
    node.stop()


if __name__ == "__main__":
    main()
