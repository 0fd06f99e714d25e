"""A Python Jobs server with the behaviour of tests/it/conformance.rs's `Worker`.

Usage: jobs_server.py ENDPOINT_URL [ACTION_LIMIT]. Prints READY once serving.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import sys

from jobs import (
    BadInput,
    CountFeedback,
    CountGoal,
    JobsHandler,
    JobsProperties,
    JobsServer,
    NotFound,
    QuotaExceeded,
)
import switchboard as sb

FAILING_COUNT = 13
PANICKING_COUNT = 99
RESETS_AT = dt.datetime(2030, 1, 2, 3, 4, 5, 123456, dt.timezone.utc)


class Worker(JobsHandler):
    server: JobsServer

    async def lookup(self, ctx: sb.CallContext, key: str) -> str:
        if key == "missing":
            raise NotFound(key)
        if key == "quota":
            raise QuotaExceeded(7, 5, RESETS_AT)
        if key == "other":
            raise sb.RemoteError(sb.ErrorCode.CLIENT_ERROR, "RateLimited", "slow down")
        if key == "panic":
            raise RuntimeError("secret detail at /srv/jobs/handler.py:42")
        return key.upper()

    async def note(self, ctx: sb.CallContext, text: str, private: bool) -> None:
        if private:
            await self.server.emit_notice_to(ctx.peer, text)
        else:
            await self.server.emit_notice(text)

    async def count(
        self, goal: sb.GoalContext[CountFeedback], to: int, step_ms: int, start_after_ms: int
    ) -> int:
        await goal.sleep(start_after_ms / 1000)
        for value in range(1, to + 1):
            await goal.feedback(CountFeedback(value))
            if to == FAILING_COUNT:
                raise QuotaExceeded(1, 1)
            if to == PANICKING_COUNT:
                raise RuntimeError("secret detail at /srv/jobs/handler.py:42")
            await goal.sleep(step_ms / 1000)
        return to

    async def accept_count(self, ctx: sb.CallContext, goal: CountGoal) -> None:
        if goal.to < 0:
            raise BadInput("to", "must not be negative")


async def main() -> None:
    worker = Worker()
    worker.server = await JobsServer.serve(worker, JobsProperties(), sys.argv[1])
    if len(sys.argv) > 2:
        worker.server.core.action_limits["count"] = int(sys.argv[2])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("READY", flush=True)
    await stop.wait()
    await worker.server.close()  # clears its retained messages on an MQTT broker
    print("CLOSED", flush=True)


asyncio.run(main())
