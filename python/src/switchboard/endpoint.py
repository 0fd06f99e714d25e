"""Endpoint URLs (the same as the Rust ``Endpoint``), connecting clients and starting servers."""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from ._spec import InterfaceSpec
from .client import ClientCore
from .errors import TransportError
from .server import ServerCore

#: The environment variable naming the default endpoint URL.
URL_ENV = "SWITCHBOARD_URL"
DEFAULT_INSTANCE = "default"
#: How long ``connect`` waits for a server before giving up.
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Endpoint:
    """Where to serve or reach a service.

    ``unix:`` (the default socket), ``unix:///run/app.sock``, ``mqtt://[user:pass@]host:1883``,
    ``mqtts://host:8883?ca=/path/ca.pem``, ``mqtt+unix:///run/mosquitto.sock``;
    ``?instance=NAME`` picks the instance (``*`` for a client: the first one discovered); MQTT URLs
    also take ``client_id`` and one ``name=value`` per topic param of the interface.
    """

    scheme: str
    path: str = ""
    host: str = ""
    port: int = 0
    username: str | None = None
    password: str | None = None
    instance: str = DEFAULT_INSTANCE
    client_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        scheme, sep, rest = url.partition(":")
        if not sep:
            raise ValueError(f"`{url}` is not an endpoint URL; expected something like `unix:`")
        location, _, query = rest.partition("?")
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        if scheme == "unix":
            instance = DEFAULT_INSTANCE
            for key, value in pairs:
                if key != "instance":
                    raise ValueError(f"unknown query parameter `{key}` in `{url}`")
                instance = value
            path = location.removeprefix("//")
            return cls("unix", path=path, instance=instance)
        if scheme in ("mqtt", "mqtts", "mqtt+unix"):
            parsed = urllib.parse.urlsplit(url)
            instance, client_id = DEFAULT_INSTANCE, None
            params: dict[str, str] = {}
            for key, value in pairs:
                if key == "instance":
                    instance = value
                elif key == "client_id":
                    client_id = value
                else:
                    params[key] = value
            user = urllib.parse.unquote(parsed.username) if parsed.username else None
            password = urllib.parse.unquote(parsed.password) if parsed.password else None
            if scheme == "mqtt+unix":
                return cls(
                    scheme, path=parsed.path, username=user, password=password,
                    instance=instance, client_id=client_id, params=params,
                )
            return cls(
                scheme,
                host=parsed.hostname or "localhost",
                port=parsed.port or (8883 if scheme == "mqtts" else 1883),
                username=user,
                password=password,
                instance=instance,
                client_id=client_id,
                params=params,
            )
        raise ValueError(
            f"unsupported scheme `{scheme}` in `{url}`; expected unix, mqtt, mqtts or mqtt+unix"
        )

    @classmethod
    def from_env(cls) -> Endpoint:
        """The endpoint named by ``$SWITCHBOARD_URL``, else the default Unix socket."""
        return cls.parse(os.environ.get(URL_ENV) or "unix:")


def _endpoint(endpoint: Endpoint | str) -> Endpoint:
    return Endpoint.parse(endpoint) if isinstance(endpoint, str) else endpoint


async def connect(
    spec: InterfaceSpec,
    endpoint: Endpoint | str,
    *,
    timeout: float | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> ClientCore:
    """Connects a client for ``spec``; generated ``Client.connect`` calls this."""
    ep = _endpoint(endpoint)
    if ep.scheme == "unix":
        from . import _unix

        path = _unix.socket_path(ep.path or None, spec.name, ep.instance)
        client = _unix.UnixClient(spec, path, ep.instance, timeout)
        await client.start(connect_timeout)
        return client
    if ep.scheme in ("mqtt", "mqtts", "mqtt+unix"):
        from . import _mqtt

        mqtt_client = _mqtt.MqttClient(spec, ep, timeout)
        await mqtt_client.start(connect_timeout)
        return mqtt_client
    raise TransportError(f"the Python runtime does not speak {ep.scheme}")


async def serve(
    spec: InterfaceSpec,
    endpoint: Endpoint | str,
    handler: Any,
    properties: dict[str, Any],
) -> ServerCore:
    """Serves ``handler`` for ``spec``; generated ``Server.serve`` calls this."""
    ep = _endpoint(endpoint)
    core = ServerCore(spec, handler, properties, ep.instance)
    if ep.scheme == "unix":
        from . import _unix

        path = _unix.socket_path(ep.path or None, spec.name, ep.instance)
        server = _unix.UnixServer(core, path)
        await server.start(default_location=not ep.path)
        core.transports.append(server)
        return core
    if ep.scheme in ("mqtt", "mqtts", "mqtt+unix"):
        from . import _mqtt

        mqtt_server = _mqtt.MqttServer(core, ep)
        core.transports.append(mqtt_server)
        try:
            await mqtt_server.start(CONNECT_TIMEOUT)
        except BaseException:
            core.transports.remove(mqtt_server)
            raise
        return core
    raise TransportError(f"the Python runtime does not speak {ep.scheme}")
