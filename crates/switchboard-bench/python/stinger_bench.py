"""Times StingerIPC's generated Python client calling addNumbers on their generated server.

Usage: stinger_bench.py INSTANCE_ID CALLS   (PYTHONPATH: the generated package and tests/interop)
Prints one JSON line with p50/p99 in microseconds.
"""

import json
import logging
import sys
import threading
import time
import uuid

logging.basicConfig(level=logging.CRITICAL)

from interopprobeipc.client import InteropProbeClientBuilder, InteropProbeClientDiscoverer  # noqa: E402
from interopprobeipc.lwt import StingerPresence  # noqa: E402
from pyqttier import Mqtt5Connection, MqttTransport, MqttTransportType  # noqa: E402


def main():
    instance, calls = sys.argv[1], int(sys.argv[2])
    client_id = f"bench-{uuid.uuid4().hex[:8]}"
    transport = MqttTransport(MqttTransportType.TCP, "127.0.0.1", 1883)
    conn = Mqtt5Connection(transport, client_id=client_id, lwt=StingerPresence(client_id=client_id))
    builder = InteropProbeClientBuilder()
    found = {}
    event = threading.Event()

    def on_discovered(entry):
        found[entry.instance_id] = entry
        if entry.instance_id == instance:
            event.set()

    discoverer = InteropProbeClientDiscoverer(conn, builder)
    discoverer.add_discovered_service_callback(on_discovered)
    if not event.wait(15):
        print(json.dumps({"error": "not discovered"}), flush=True)
        return 1
    client = builder.build(conn, found[instance])
    for _ in range(min(200, calls)):
        client.add_numbers(1, 2).result(10)
    samples = []
    for i in range(calls):
        start = time.perf_counter_ns()
        got = client.add_numbers(i, 2).result(10)
        samples.append(time.perf_counter_ns() - start)
        assert got == i + 2
    samples.sort()
    q = lambda p: samples[max(0, int(len(samples) * p + 0.999999) - 1)] / 1000.0  # noqa: E731
    print(json.dumps({"p50": q(0.5), "p99": q(0.99), "n": calls}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
