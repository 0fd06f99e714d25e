"""A raw MQTT v5 subscriber (plain paho, no StingerIPC code) that prints what it receives.

Usage: capture.py [--host H] [--port P] [--seconds S] [--count N] [--clear] TOPIC_FILTER...

Prints "ready" once every subscription is acknowledged, then one line per message, in the
notation of the StingerIPC reference:

    t=TOPIC q=QOS r=RETAIN ct=TYPE rt=RESPONSE_TOPIC cd=CORRELATION exp=EXPIRY up=K:V | PAYLOAD

It exits after S seconds (default 10) or after N messages, whichever comes first. With --clear it
instead removes every retained message under the filters (publishing an empty retained message
to each topic) and exits; tests use it to leave the broker as they found it.
"""

from __future__ import annotations

import argparse
import sys
import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def render(message: mqtt.MQTTMessage) -> str:
    """One message in the reference's capture notation."""
    props = getattr(message, "properties", None)

    def prop(name: str) -> str:
        value = getattr(props, name, None) if props is not None else None
        if value is None:
            return ""
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="backslashreplace")
        return str(value)

    user = " ".join(f"{k}:{v}" for k, v in (getattr(props, "UserProperty", None) or []))
    payload = message.payload.decode("utf-8", errors="backslashreplace")
    return (
        f"t={message.topic} q={message.qos} r={int(message.retain)} ct={prop('ContentType')} "
        f"rt={prop('ResponseTopic')} cd={prop('CorrelationData')} "
        f"exp={prop('MessageExpiryInterval')} up={user} | {payload}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("filters", nargs="+")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--count", type=int, default=0, help="stop after this many messages")
    parser.add_argument("--clear", action="store_true", help="remove retained messages instead")
    args = parser.parse_args()
    if args.clear:
        args.seconds = min(args.seconds, 0.5)

    done = threading.Event()
    subscribed = threading.Event()
    received = 0
    lock = threading.Lock()

    def on_connect(
        client: mqtt.Client, _userdata: object, _flags: object, reason: object, _props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            print(f"connect failed: {reason}", file=sys.stderr)
            done.set()
            return
        sub_props = Properties(PacketTypes.SUBSCRIBE)
        sub_props.SubscriptionIdentifier = 1
        client.subscribe([(f, 2) for f in args.filters], properties=sub_props)

    def on_subscribe(
        _client: mqtt.Client, _userdata: object, _mid: int, _reasons: object, _props: object
    ) -> None:
        print("ready", flush=True)
        subscribed.set()

    def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        nonlocal received
        if args.clear:
            if message.retain and message.payload:
                _client.publish(message.topic, b"", qos=1, retain=True)
                print(f"cleared {message.topic}", flush=True)
            return
        with lock:
            print(render(message), flush=True)
            received += 1
            if args.count and received >= args.count:
                done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"capture-{uuid.uuid4()}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(args.host, args.port, keepalive=30)
    client.loop_start()
    if args.clear:
        # Retained messages arrive right after the subscription is acknowledged.
        subscribed.wait(5.0)
    done.wait(args.seconds)
    client.disconnect()
    client.loop_stop()
    if not subscribed.is_set():
        print("never subscribed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
