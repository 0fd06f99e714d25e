"""Python peers for the compatibility matrix (tests/it/evolve.rs), with the same expectations as
its Rust rows.

Usage:
  evolve_peer.py serve ROW OLD NEW GENERATED OLD_URL NEW_URL
      serves the version OLD at OLD_URL and NEW at NEW_URL (the row's two files of
      tests/interfaces/evolve/); prints READY once serving, and CLOSED after SIGTERM.
  evolve_peer.py client ROW OLD NEW GENERATED OLD_URL NEW_URL
      a client of OLD against the server of NEW at NEW_URL, and a client of NEW against the
      server of OLD at OLD_URL, as the row's body in tests/it/evolve.rs; prints PASS when every
      check passed.
  evolve_peer.py follow added_method v1 added_method GENERATED URL URL
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

ROLE, ROW, OLD, NEW, GENERATED, OLD_URL, NEW_URL = sys.argv[1:8]
STEP = 10.0


def load(version: str) -> ModuleType:
    """The generated package of tests/interfaces/evolve/VERSION.yaml."""
    path = os.path.join(GENERATED, version, "evolving", "__init__.py")
    name = f"evolving_{version}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
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


def accepts(celsius: Any, note: Any) -> bool:
    """Whether `setTarget` accepts, in every version: a positive temperature, unless the note is
    `refuse`."""
    return bool(celsius > 0.0 and note != "refuse")


def handler(module: ModuleType, version: str) -> Any:
    class Handler(module.EvolvingHandler):  # type: ignore[misc,name-defined]
        async def set_target(self, ctx: sb.CallContext, *args: Any) -> Any:
            if version == "reordered_arguments":
                note, celsius = args
                return accepts(celsius, note)
            if version == "changed_type":
                celsius, note = args
                return bool(celsius != "" and note != "refuse")
            if version == "added_optional_argument":
                # An old client sends no `urgent`; it reads as None.
                celsius, note, urgent = args
                return accepts(celsius, note) and urgent is not False
            if version == "added_required_argument":
                celsius, note, zone = args
                return accepts(celsius, note) and zone != ""
            celsius, note = args
            if version == "declared_error" and celsius > 30.0:
                raise module.TooHot(30.0)
            accepted = accepts(celsius, note)
            if version in ("added_optional_return_value", "added_required_return_value"):
                return module.SetTargetReply(accepted, 20.0)
            return accepted

        async def read(self, ctx: sb.CallContext) -> Any:
            if version == "added_struct_field":
                # The new member goes on the wire, so an old client sees a key it does not know.
                return module.Reading(21.5, 40.0)
            return module.Reading(21.5)

        async def mode(self, ctx: sb.CallContext) -> Any:
            if version == "added_enum_value":
                return module.Mode.COOL
            if version == "renamed_enum_value":
                return module.Mode.WARM
            return module.Mode.HEAT

        async def ping(self, ctx: sb.CallContext) -> None:
            return None

        async def pong(self, ctx: sb.CallContext) -> None:
            return None

        async def boost(self, ctx: sb.CallContext) -> None:
            return None

        async def set_level(self, ctx: sb.CallContext, level: int) -> bool:
            return level > 0

        async def ring(self, ctx: sb.CallContext, chime: str) -> None:
            return None

        async def preheat(self, goal: Any, target_celsius: float) -> float:
            return target_celsius

    return Handler()


def properties(module: ModuleType, version: str) -> Any:
    if version in ("added_property", "added_read_only_property"):
        return module.EvolvingProperties(limit=25.0)
    if version == "added_property_value":
        return module.EvolvingProperties(limit=module.LimitProperty(25.0, 1.0))
    return module.EvolvingProperties()


async def serve() -> None:
    servers = []
    for version, url in ((OLD, OLD_URL), (NEW, NEW_URL)):
        module = load(version)
        servers.append(
            await module.EvolvingServer.serve(handler(module, version), properties(module, version), url)
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


async def v1_calls_work(module: ModuleType, client: Any) -> None:
    """The calls of v1's methods, which the server has in their v1 form: each answers as v1's
    handler does. `module` is the client's version."""
    check(await step(client.set_target(21.5, "hi")) is True, "setTarget accepted")
    check(await step(client.set_target(21.5, "refuse")) is False, "setTarget refused")
    check(await step(client.set_target(21.5, None)) is True, "setTarget without a note")
    check((await step(client.read())).celsius == 21.5, "read")
    check(await step(client.mode()) == module.Mode.HEAT, "mode")


async def refused_at(module: ModuleType, url: str, path: str) -> None:
    """The connect fails because the pair is incompatible at `path`, and says so."""
    try:
        await connect(module, url)
    except sb.IncompatibleInterfaceError as error:
        check(f"`{path}`" in str(error), f"refused naming `{path}`: {error}")
        return
    raise AssertionError(f"connected, but `{path}` should refuse the pair")


async def lacks(call: Any, name: str, member: str) -> None:
    """The use of a member fails before anything is sent, because the server lacks it, with the
    error the server itself would answer (`name`: UnknownMethod, UnknownProperty, ...) naming
    `member` (such as "method `boost`")."""
    try:
        await step(call)
    except sb.RemoteError as error:
        check(
            (error.code, error.name) == (sb.ErrorCode.METHOD_NOT_FOUND, name)
            and member in error.message
            and "nothing was sent" in error.message,
            f"{member} fails as unknown before sending: {error}",
        )
        return
    raise AssertionError(f"using {member} should fail as unknown")


async def lacks_method(call: Any, method: str) -> None:
    await lacks(call, "UnknownMethod", f"method `{method}`")


async def works_both_ways(old: ModuleType, new: ModuleType) -> None:
    client = await connect(old, NEW_URL)
    await v1_calls_work(old, client)
    await step(client.ping())
    client = await connect(new, OLD_URL)
    await v1_calls_work(new, client)
    await step(client.ping())


async def added_method(old: ModuleType, new: ModuleType) -> None:
    await v1_calls_work(old, await connect(old, NEW_URL))
    client = await connect(new, OLD_URL)
    await step(client.ping())
    check(await step(client.set_target(1.0, None)) is True, "setTarget")
    await lacks_method(client.boost(), "boost")


async def added_optional_argument(old: ModuleType, new: ModuleType) -> None:
    await v1_calls_work(old, await connect(old, NEW_URL))
    client = await connect(new, OLD_URL)
    check(await step(client.set_target(21.5, "hi", False)) is True, "old server ignores urgent")
    check(await step(client.set_target(21.5, "refuse", True)) is False, "known arguments read")


async def added_struct_field(old: ModuleType, new: ModuleType) -> None:
    await v1_calls_work(old, await connect(old, NEW_URL))
    reading = await step((await connect(new, OLD_URL)).read())
    check((reading.celsius, reading.humidity) == (21.5, None), "missing member reads as None")
    reading = await step((await connect(new, NEW_URL)).read())
    check(reading.humidity == 40.0, "same versions carry the member")


async def added_enum_value(old: ModuleType, new: ModuleType) -> None:
    await refused_at(old, NEW_URL, "enums.Mode.values.cool")
    client = await connect(new, OLD_URL)
    check(await step(client.mode()) == new.Mode.HEAT, "mode from an old server")
    await step(client.ping())


async def removed_method(old: ModuleType, new: ModuleType) -> None:
    client = await connect(old, NEW_URL)
    await lacks_method(client.ping(), "ping")
    await v1_calls_work(old, client)
    client = await connect(new, OLD_URL)
    check(await step(client.set_target(1.0, None)) is True, "setTarget")


async def changed_type(old: ModuleType, new: ModuleType) -> None:
    await refused_at(old, NEW_URL, "methods.setTarget.arguments.celsius")
    await refused_at(new, OLD_URL, "methods.setTarget.arguments.celsius")
    # The refusals cost the servers nothing: a client of their own version still works.
    await v1_calls_work(old, await connect(old, OLD_URL))


async def optional_to_required(old: ModuleType, new: ModuleType) -> None:
    await refused_at(old, NEW_URL, "methods.setTarget.arguments.note")
    client = await connect(new, OLD_URL)
    check(await step(client.set_target(21.5, "hi")) is True, "setTarget")
    check(await step(client.set_target(21.5, "refuse")) is False, "setTarget refused")


async def added_signal(old: ModuleType, new: ModuleType) -> None:
    await v1_calls_work(old, await connect(old, NEW_URL))
    client = await connect(new, OLD_URL)
    await step(client.ping())
    await lacks(client.subscribe_alarm(), "UnknownSignal", "signal `alarm`")
    await step((await connect(new, NEW_URL)).subscribe_alarm())
    check(True, "the new server has `alarm`")


async def enum_value_renumbered(old: ModuleType, new: ModuleType) -> None:
    await refused_at(old, NEW_URL, "enums.Mode.values.heat")
    await refused_at(new, OLD_URL, "enums.Mode.values.heat")


async def added_property(old: ModuleType, new: ModuleType) -> None:
    await v1_calls_work(old, await connect(old, NEW_URL))
    client = await connect(new, OLD_URL)
    await v1_calls_work(new, client)
    await lacks(client.get_limit(), "UnknownProperty", "property `limit`")
    await lacks(client.set_limit(20.0), "UnknownProperty", "property `limit`")
    client = await connect(new, NEW_URL)
    check(await step(client.get_limit()) == 25.0, "the new server has `limit`")


async def property_made_read_only(old: ModuleType, new: ModuleType) -> None:
    await refused_at(old, NEW_URL, "properties.limit.readOnly")
    client = await connect(new, OLD_URL)
    check(await step(client.get_limit()) == 25.0, "a new client reads `limit`")
    await v1_calls_work(new, client)


async def added_action(old: ModuleType, new: ModuleType) -> None:
    await v1_calls_work(old, await connect(old, NEW_URL))
    client = await connect(new, OLD_URL)
    await v1_calls_work(new, client)
    await lacks(client.preheat(25.0), "UnknownAction", "action `preheat`")
    goal = await step((await connect(new, NEW_URL)).preheat(25.0))
    check(await goal.result(STEP) == 25.0, "the new server runs `preheat`")


async def added_command(old: ModuleType, new: ModuleType) -> None:
    await v1_calls_work(old, await connect(old, NEW_URL))
    client = await connect(new, OLD_URL)
    await v1_calls_work(new, client)
    await lacks(client.ring("chime"), "UnknownCommand", "command `ring`")
    client = await connect(new, NEW_URL)
    await step(client.ring("chime"))
    await step(client.ping())
    check(True, "the new server has `ring`")


async def added_optional_return_value(old: ModuleType, new: ModuleType) -> None:
    await v1_calls_work(old, await connect(old, NEW_URL))
    client = await connect(new, OLD_URL)
    reply = await step(client.set_target(21.5, None))
    check((reply.accepted, reply.previous) == (True, None), "a missing return value reads as None")
    check((await step(client.set_target(21.5, "refuse"))).accepted is False, "setTarget refused")
    reply = await step((await connect(new, NEW_URL)).set_target(21.5, None))
    check((reply.accepted, reply.previous) == (True, 20.0), "same versions carry it")


async def added_required_return_value(old: ModuleType, new: ModuleType) -> None:
    await v1_calls_work(old, await connect(old, NEW_URL))
    await refused_at(new, OLD_URL, "methods.setTarget.returnValues.previous")
    reply = await step((await connect(new, NEW_URL)).set_target(21.5, None))
    check((reply.accepted, reply.previous) == (True, 20.0), "same versions carry it")


async def return_value_made_optional(old: ModuleType, new: ModuleType) -> None:
    await refused_at(old, NEW_URL, "methods.setTarget.returnValues.accepted")
    client = await connect(new, OLD_URL)
    check(await step(client.set_target(21.5, "hi")) is True, "setTarget")
    check(await step(client.set_target(21.5, "refuse")) is False, "setTarget refused")


async def added_required_argument(old: ModuleType, new: ModuleType) -> None:
    await refused_at(old, NEW_URL, "methods.setTarget.arguments.zone")
    client = await connect(new, OLD_URL)
    check(await step(client.set_target(21.5, "hi", zone="hall")) is True, "old server ignores zone")
    check(await step(client.set_target(21.5, "refuse", zone="hall")) is False, "known arguments read")


async def reordered_arguments(old: ModuleType, new: ModuleType) -> None:
    await v1_calls_work(old, await connect(old, NEW_URL))
    client = await connect(new, OLD_URL)
    check(await step(client.set_target("hi", celsius=21.5)) is True, "setTarget by name")
    check(await step(client.set_target("refuse", celsius=21.5)) is False, "each argument read by name")
    check(await step(client.set_target(None, celsius=-1.0)) is False, "celsius read by name")


async def narrowed_argument(old: ModuleType, new: ModuleType) -> None:
    await refused_at(old, NEW_URL, "methods.setTarget.arguments.celsius")
    client = await connect(new, OLD_URL)
    check(await step(client.set_target(21.5, None)) is True, "setTarget")
    check(await step(client.set_target(21.5, "refuse")) is False, "setTarget refused")
    check(await step(client.set_target(3.4028234663852886e38, None)) is True, "float32's largest")


async def narrowed_return_value(old: ModuleType, new: ModuleType) -> None:
    await v1_calls_work(old, await connect(old, NEW_URL))
    await refused_at(new, OLD_URL, "structures.Reading.members.celsius")
    reading = await step((await connect(new, NEW_URL)).read())
    check(reading.celsius == 21.5, "same versions read")


async def declared_error(old: ModuleType, new: ModuleType) -> None:
    client = await connect(old, NEW_URL)
    await v1_calls_work(old, client)
    try:
        await step(client.set_target(35.0, None))
    except sb.RemoteError as error:
        check(
            error.name == "TooHot" and error.details == {"limitCelsius": 30.0},
            f"an old client receives the undeclared `TooHot` with its values: {error!r}",
        )
    else:
        raise AssertionError("35 °C should fail as `TooHot` on the new server")
    client = await connect(new, OLD_URL)
    check(await step(client.set_target(35.0, None)) is True, "the old server never raises it")
    try:
        await step((await connect(new, NEW_URL)).set_target(35.0, None))
    except new.TooHot as error:
        check(error.limit_celsius == 30.0, "a new client receives the declared `TooHot`")
    else:
        raise AssertionError("35 °C should fail as the declared `TooHot`")


async def renamed_method(old: ModuleType, new: ModuleType) -> None:
    client = await connect(old, NEW_URL)
    await lacks_method(client.ping(), "ping")
    await v1_calls_work(old, client)
    client = await connect(new, OLD_URL)
    await lacks_method(client.pong(), "pong")
    await v1_calls_work(new, client)


async def renamed_enum_value(old: ModuleType, new: ModuleType) -> None:
    check(await step((await connect(old, NEW_URL)).mode()) == old.Mode.HEAT, "old name")
    check(await step((await connect(new, OLD_URL)).mode()) == new.Mode.WARM, "new name")


async def property_value_added_required(old: ModuleType, new: ModuleType) -> None:
    await refused_at(old, NEW_URL, "properties.limit.values.margin")
    await refused_at(new, OLD_URL, "properties.limit.values.margin")
    limit = await step((await connect(new, NEW_URL)).get_limit())
    check((limit.celsius, limit.margin) == (25.0, 1.0), "same versions read both values")


async def integer_argument_widened(old: ModuleType, new: ModuleType) -> None:
    client = await connect(old, NEW_URL)
    check(await step(client.set_level(2**31 - 1)) is True, "int32's largest")
    check(await step(client.set_level(-(2**31))) is False, "int32's smallest")
    await v1_calls_work(old, client)
    await refused_at(new, OLD_URL, "methods.setLevel.arguments.level")
    client = await connect(new, NEW_URL)
    check(await step(client.set_level(2**63 - 1)) is True, "int64's largest, same versions")


async def integer_argument_made_unsigned(old: ModuleType, new: ModuleType) -> None:
    await refused_at(old, NEW_URL, "methods.setLevel.arguments.level")
    await refused_at(new, OLD_URL, "methods.setLevel.arguments.level")
    # The refusals cost the servers nothing: a client of their own version still works.
    check(await step((await connect(old, OLD_URL)).set_level(1)) is True, "same versions")


ROWS = {
    "added_method": added_method,
    "added_optional_argument": added_optional_argument,
    "added_struct_field": added_struct_field,
    "added_enum_value": added_enum_value,
    "removed_method": removed_method,
    "changed_type": changed_type,
    "optional_to_required": optional_to_required,
    "added_signal": added_signal,
    "enum_value_renumbered": enum_value_renumbered,
    "added_property": added_property,
    "property_made_read_only": property_made_read_only,
    "added_action": added_action,
    "added_command": added_command,
    "added_optional_return_value": added_optional_return_value,
    "added_required_return_value": added_required_return_value,
    "return_value_made_optional": return_value_made_optional,
    "added_required_argument": added_required_argument,
    "reordered_arguments": reordered_arguments,
    "narrowed_argument": narrowed_argument,
    "narrowed_return_value": narrowed_return_value,
    "declared_error": declared_error,
    "renamed_method": renamed_method,
    "renamed_enum_value": renamed_enum_value,
    "added_definitions": works_both_ways,
    "added_constant": works_both_ways,
    "timeout_changed": works_both_ways,
    "documentation_changed": works_both_ways,
    "property_value_added_required": property_value_added_required,
    "integer_argument_widened": integer_argument_widened,
    "integer_argument_made_unsigned": integer_argument_made_unsigned,
}


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
        await ROWS[ROW](load(OLD), load(NEW))
    finally:
        for client in OPEN:
            await client.close()
    print("PASS", flush=True)


asyncio.run(serve() if ROLE == "serve" else follow() if ROLE == "follow" else clients())
