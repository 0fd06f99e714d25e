"""Faults never hang a Python client: no server, a server that never answers, a lost connection,
and reconnecting. Usage: faults_client.py unix://PATH. Prints PASS."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time

from jobs import INTERFACE, JobsClient, JobsHandler, JobsProperties, JobsServer
import switchboard as sb
from switchboard import _unix

URL = sys.argv[1]
PATH = URL[len("unix://"):]


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)
    print("ok", what, flush=True)


class Mute:
    """A server that completes the handshake and then answers nothing."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        hello = await _unix.read_frame(reader)
        writer.write(_unix.Frame(_unix.WELCOME, INTERFACE.name, hello.payload).encode())
        try:
            while True:
                await _unix.read_frame(reader)
        except (asyncio.IncompleteReadError, OSError):
            writer.close()


class Worker(JobsHandler):
    async def lookup(self, ctx: sb.CallContext, key: str) -> str:
        return key.upper()

    async def note(self, ctx: sb.CallContext, text: str, private: bool) -> None:
        pass

    async def count(self, goal: sb.GoalContext, to: int, step_ms: int, start_after_ms: int) -> int:  # type: ignore[type-arg]
        return to


async def main() -> None:
    start = time.monotonic()
    try:
        await JobsClient.connect(URL)
        check(False, "connect without a server fails")
    except sb.ConnectError as error:
        check(time.monotonic() - start < 2 and PATH in str(error), "no server: ConnectError at once, naming the path")

    os.makedirs(os.path.dirname(PATH), exist_ok=True)
    mute = Mute()
    server = await asyncio.start_unix_server(mute.serve, PATH)
    client = await JobsClient.connect(URL)
    start = time.monotonic()
    try:
        await client.lookup("x", timeout=0.3)
        check(False, "timeout")
    except sb.RequestTimeoutError:
        check(0.25 < time.monotonic() - start < 2, "a silent server: RequestTimeoutError after the timeout")

    pending = asyncio.ensure_future(client.lookup("y"))
    await asyncio.sleep(0.1)
    server.close()
    for writer in mute.writers:
        writer.close()
    try:
        await asyncio.wait_for(pending, 5)
        check(False, "disconnect")
    except sb.DisconnectedError:
        check(True, "a lost connection fails the call in flight with DisconnectedError")
    try:
        await client.lookup("z")
        check(False, "not connected")
    except sb.NotConnectedError:
        check(True, "while disconnected, requests fail at once with NotConnectedError")
    await server.wait_closed()
    with contextlib.suppress(FileNotFoundError):  # Python 3.13 removes it when the server closes
        os.unlink(PATH)

    real = await JobsServer.serve(Worker(), JobsProperties(), URL)
    deadline = time.monotonic() + 5
    while True:
        try:
            if await client.lookup("back") == "BACK":
                break
        except sb.NotConnectedError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
    check(True, "the client reconnects by itself")
    mismatched = sb.InterfaceSpec(INTERFACE.name, "9.9.9", "sha256:" + "0" * 64)
    try:
        await sb.connect(mismatched, URL)
        check(False, "incompatible")
    except sb.IncompatibleInterfaceError as error:
        check("9.9.9" in str(error), "a different interface hash is refused with IncompatibleInterfaceError")
    await client.close()
    await real.close()
    print("PASS", flush=True)


asyncio.run(main())
