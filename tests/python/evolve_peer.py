"""Python peers for the compatibility matrix (tests/it/evolve.rs), with the same expectations as
its Rust rows.

Usage:
  evolve_peer.py serve CHANGE GENERATED OLD_URL NEW_URL
      serves v1 at OLD_URL and the version CHANGE at NEW_URL; prints READY once serving, and
      CLOSED after SIGTERM.
  evolve_peer.py client CHANGE GENERATED OLD_URL NEW_URL
      a v1 client against the server of CHANGE at NEW_URL, and a client of CHANGE against the
      v1 server at OLD_URL; prints PASS when every check passed.
  evolve_peer.py follow added_method GENERATED URL URL
      a client of added_method against the v1 server at URL: `boost` fails as lacking; prints
      SWAP, then waits until the server at URL, restarted by the test as added_method, serves
      `boost` (the client decides again on the new server's interface info); prints PASS.

GENERATED holds one generated package per file of tests/interfaces/evolve/ (GENERATED/v1,
GENERATED/added_method, ...); all are the package `evolving`, so each is loaded under a name of
its own.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sys
from types import ModuleType
from typing import Any

import switchboard as sb

ROLE, CHANGE, GENERATED, OLD_URL, NEW_URL = sys.argv[1:6]
STEP = 10.0


def load(version: str) -> ModuleType:
    """The generated package of tests/interfaces/evolve/VERSION.yaml."""
    path = os.path.join(GENERATED, version, "evolving", "__init__.py")
    spec = importlib.util.spec_from_file_location(f"evolving_{version}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)
    print("ok", what, flush=True)


# --- servers: the behaviour of tests/it/evolve.rs's `Handler` ---------------------------------


def handler(module: ModuleType, version: str) -> Any:
    class Handler(module.EvolvingHandler):  # type: ignore[misc,name-defined]
        async def set_target(self, ctx: sb.CallContext, celsius: Any, note: Any = None,
                             urgent: bool | None = None) -> bool:
            # An old client sends no `urgent`; it reads as None.
            given = celsius != "" if version == "changed_type" else celsius > 0.0
            return bool(given and note != "refuse" and urgent is not False)

        async def read(self, ctx: sb.CallContext) -> Any:
            if version == "added_struct_field":
                # The new member goes on the wire, so an old client sees a key it does not know.
                return module.Reading(21.5, 40.0)
            return module.Reading(21.5)

        async def mode(self, ctx: sb.CallContext) -> Any:
            return module.Mode.COOL if version == "added_enum_value" else module.Mode.HEAT

        async def ping(self, ctx: sb.CallContext) -> None:
            return None

        async def boost(self, ctx: sb.CallContext) -> None:
            return None

    return Handler()


async def serve() -> None:
    servers = []
    for version, url in (("v1", OLD_URL), (CHANGE, NEW_URL)):
        module = load(version)
        servers.append(
            await module.EvolvingServer.serve(handler(module, version), module.EvolvingProperties(), url)
        )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("READY", flush=True)
    await stop.wait()
    for server in servers:
        await server.close()  # clears its retained messages on an MQTT broker
    print("CLOSED", flush=True)


# --- clients: the bodies of tests/it/evolve.rs ------------------------------------------------


async def step(coro: Any) -> Any:
    return await asyncio.wait_for(coro, STEP)


OPEN: list[Any] = []


async def connect(module: ModuleType, url: str) -> Any:
    client = await step(module.EvolvingClient.connect(url))
    OPEN.append(client)
    return client


async def v1_calls_work(v1: ModuleType, client: Any) -> None:
    """A v1 client's calls, all of which the server has: each answers as v1's handler does."""
    check(await step(client.set_target(21.5, "hi")) is True, "setTarget accepted")
    check(await step(client.set_target(21.5, "refuse")) is False, "setTarget refused")
    check(await step(client.set_target(21.5, None)) is True, "setTarget without a note")
    check((await step(client.read())).celsius == 21.5, "read")
    check(await step(client.mode()) == v1.Mode.HEAT, "mode")


async def refused_at(module: ModuleType, url: str, path: str) -> None:
    """The connect fails because the pair is incompatible at `path`, and says so."""
    try:
        await connect(module, url)
    except sb.IncompatibleInterfaceError as error:
        check(f"`{path}`" in str(error), f"refused naming `{path}`: {error}")
        return
    raise AssertionError(f"connected, but `{path}` should refuse the pair")


async def lacks_method(call: Any, method: str) -> None:
    """The call fails before anything is sent, because the server lacks `method`."""
    try:
        await step(call)
    except sb.RemoteError as error:
        check(
            (error.code, error.name) == (sb.ErrorCode.METHOD_NOT_FOUND, "UnknownMethod")
            and f"method `{method}`" in error.message
            and "nothing was sent" in error.message,
            f"`{method}` fails as unknown before sending: {error}",
        )
        return
    raise AssertionError(f"calling `{method}` should fail as unknown")


async def old_client() -> None:
    """A v1 client against the server of CHANGE."""
    v1 = load("v1")
    if CHANGE in ("added_method", "added_optional_argument", "added_struct_field", "added_signal"):
        await v1_calls_work(v1, await connect(v1, NEW_URL))
    elif CHANGE == "added_enum_value":
        await refused_at(v1, NEW_URL, "enums.Mode.values.cool")
    elif CHANGE == "removed_method":
        client = await connect(v1, NEW_URL)
        await lacks_method(client.ping(), "ping")
        await v1_calls_work(v1, client)
    elif CHANGE == "changed_type":
        await refused_at(v1, NEW_URL, "methods.setTarget.arguments.celsius")
    elif CHANGE == "optional_to_required":
        await refused_at(v1, NEW_URL, "methods.setTarget.arguments.note")
    elif CHANGE == "enum_value_renumbered":
        await refused_at(v1, NEW_URL, "enums.Mode.values.heat")
    else:
        raise AssertionError(f"no body for `{CHANGE}`")


async def new_client() -> None:
    """A client of CHANGE against the v1 server."""
    new = load(CHANGE)
    if CHANGE == "added_method":
        client = await connect(new, OLD_URL)
        await step(client.ping())
        check(await step(client.set_target(1.0, None)) is True, "setTarget")
        await lacks_method(client.boost(), "boost")
    elif CHANGE == "added_optional_argument":
        client = await connect(new, OLD_URL)
        check(await step(client.set_target(21.5, "hi", False)) is True, "old server ignores urgent")
        check(await step(client.set_target(21.5, "refuse", True)) is False, "known arguments read")
    elif CHANGE == "added_struct_field":
        reading = await step((await connect(new, OLD_URL)).read())
        check((reading.celsius, reading.humidity) == (21.5, None), "missing member reads as None")
        reading = await step((await connect(new, NEW_URL)).read())
        check(reading.humidity == 40.0, "same versions carry the member")
    elif CHANGE == "added_enum_value":
        client = await connect(new, OLD_URL)
        check(await step(client.mode()) == new.Mode.HEAT, "mode from an old server")
        await step(client.ping())
    elif CHANGE == "removed_method":
        client = await connect(new, OLD_URL)
        check(await step(client.set_target(1.0, None)) is True, "setTarget")
    elif CHANGE == "changed_type":
        await refused_at(new, OLD_URL, "methods.setTarget.arguments.celsius")
        # The refusal costs the server nothing: a client of its own version still works.
        v1 = load("v1")
        await v1_calls_work(v1, await connect(v1, OLD_URL))
    elif CHANGE == "optional_to_required":
        client = await connect(new, OLD_URL)
        check(await step(client.set_target(21.5, "hi")) is True, "setTarget")
        check(await step(client.set_target(21.5, "refuse")) is False, "setTarget refused")
    elif CHANGE == "added_signal":
        client = await connect(new, OLD_URL)
        await step(client.ping())
        try:
            await step(client.subscribe_alarm())
        except sb.RemoteError as error:
            check(
                (error.code, error.name) == (sb.ErrorCode.METHOD_NOT_FOUND, "UnknownSignal")
                and "signal `alarm`" in error.message
                and "nothing was sent" in error.message,
                f"subscribing to `alarm` fails as unknown before sending: {error}",
            )
        else:
            raise AssertionError("subscribing to `alarm` on an old server should fail")
        await step((await connect(new, NEW_URL)).subscribe_alarm())
        check(True, "the new server has `alarm`")
    elif CHANGE == "enum_value_renumbered":
        await refused_at(new, OLD_URL, "enums.Mode.values.heat")
    else:
        raise AssertionError(f"no body for `{CHANGE}`")


async def follow() -> None:
    """A client of added_method re-decides what the server lacks when another version of the
    server announces itself at the same instance."""
    new = load("added_method")
    client = await connect(new, NEW_URL)
    try:
        await lacks_method(client.boost(), "boost")
        print("SWAP", flush=True)
        deadline = asyncio.get_running_loop().time() + 30.0
        while True:
            try:
                await step(client.boost())
                break
            except sb.RemoteError as error:
                lacking = "nothing was sent" in error.message
                if not lacking or asyncio.get_running_loop().time() > deadline:
                    raise
            await asyncio.sleep(0.1)
        check(True, "boost works once the server serves it")
        check(await step(client.set_target(1.0, None)) is True, "setTarget on the new server")
    finally:
        await client.close()
    print("PASS", flush=True)


async def clients() -> None:
    try:
        await old_client()
        await new_client()
    finally:
        for client in OPEN:
            await client.close()
    print("PASS", flush=True)


asyncio.run(serve() if ROLE == "serve" else follow() if ROLE == "follow" else clients())
