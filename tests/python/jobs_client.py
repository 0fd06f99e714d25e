"""Drives a Jobs server (Rust, Python or C++) through actions, commands, typed errors and events
to one client. Usage: jobs_client.py ENDPOINT_URL [--broadcast-only]; with --broadcast-only
(a server that cannot send an event to one client, as the C++ one) the private notices are not
checked. Prints PASS when every check passed."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import uuid

from jobs import BadInput, JobsClient, NotFound, QuotaExceeded
import switchboard as sb

URL = sys.argv[1]
BROADCAST_ONLY = sys.argv[2:] == ["--broadcast-only"]
STEP = 5.0
RESETS_AT = dt.datetime(2030, 1, 2, 3, 4, 5, 123456, dt.timezone.utc)


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)
    print("ok", what, flush=True)


async def expect(exc: type[BaseException], coro: object) -> BaseException:
    try:
        await asyncio.wait_for(coro, STEP)  # type: ignore[arg-type]
    except exc as error:
        return error
    raise AssertionError(f"expected {exc.__name__}")


def leaks_nothing(error: BaseException) -> bool:
    assert isinstance(error, sb.RemoteError)
    text = repr(error) + str(error) + str(error.details)
    return (
        error.name == "Internal"
        and error.code == sb.ErrorCode.SERVER_ERROR
        and error.message == "the server failed while handling the request"
        and not any(s in text for s in ("secret", "/srv", ".rs", ".py", "panicked"))
    )


async def main() -> None:
    client = await JobsClient.connect(URL)
    check(await client.lookup("abc") == "ABC", "method result")
    err = await expect(NotFound, client.lookup("missing"))
    check(isinstance(err, NotFound) and err.key == "missing", "declared error NotFound with fields")
    err = await expect(QuotaExceeded, client.lookup("quota"))
    check(isinstance(err, QuotaExceeded) and (err.used, err.limit, err.resets_at) == (7, 5, RESETS_AT), "declared QuotaExceeded with fields")
    err = await expect(sb.RemoteError, client.lookup("other"))
    assert isinstance(err, sb.RemoteError)
    check((err.name, err.message, err.code) == ("RateLimited", "slow down", sb.ErrorCode.CLIENT_ERROR), "undeclared error keeps name and message")
    check(leaks_nothing(await expect(sb.RemoteError, client.lookup("panic"))), "handler failure leaks nothing")
    check(await client.lookup("still") == "STILL", "server keeps serving")

    goal = await client.count(3, 1, 0)
    check(await goal.result(STEP) == 3 and goal.status is sb.GoalStatus.SUCCEEDED, "goal succeeds")
    err = await expect(BadInput, client.count(-1, 1, 0))
    check(isinstance(err, BadInput) and (err.field, err.reason) == ("to", "must not be negative"), "goal rejected with declared error")

    goal = await client.count(200, 0, 0)
    seen = []
    while (fb := await goal.next_feedback(STEP)) is not None:
        seen.append(fb.value)
    check(seen == list(range(1, 201)), "every feedback in order")
    check(await goal.result(STEP) == 200, "result after feedback")

    goal = await client.count(5, 10, 30_000)
    check(await goal.cancel() == sb.GoalStatus.CANCELING, "cancel before start answers canceling")
    await expect(sb.GoalCancelledError, goal.result())
    check(goal.status is sb.GoalStatus.CANCELLED and await goal.next_feedback(STEP) is None, "cancelled before start, no feedback")

    goal = await client.count(10_000, 10, 0)
    first = await goal.next_feedback(STEP)
    check(first is not None and first.value == 1 and goal.status is sb.GoalStatus.EXECUTING, "running goal reports feedback")
    await goal.cancel()
    await expect(sb.GoalCancelledError, goal.result())
    check(True, "cancel during run")

    goal = await client.count(2, 0, 0)
    await goal.result(STEP)
    check(await goal.cancel() == sb.GoalStatus.SUCCEEDED, "cancel after end changes nothing")

    goal = await client.count(13, 0, 0)
    err = await expect(QuotaExceeded, goal.result())
    check(isinstance(err, QuotaExceeded) and (err.used, err.limit, err.resets_at) == (1, 1, None), "goal fails with declared error")
    check(goal.status is sb.GoalStatus.FAILED, "failed status")
    goal = await client.count(99, 0, 0)
    check(leaks_nothing(await expect(sb.RemoteError, goal.result())), "goal handler failure leaks nothing")

    done = await client.count(3, 0, 0)
    await done.result(STEP)
    late = await JobsClient.connect(URL)
    attached = await late.attach_count(done.id)
    check(attached.status is sb.GoalStatus.SUCCEEDED and await attached.result(STEP) == 3, "late attach gets the result")
    err = await expect(sb.RemoteError, late.attach_count(str(uuid.uuid4())))
    check(isinstance(err, sb.RemoteError) and err.name == "UnknownGoal", "unknown goal")

    notices = await client.subscribe_notice()
    others = await late.subscribe_notice()
    # SUBSCRIBE has no answer; a round trip on each connection shows it has been handled.
    await client.lookup("sync")
    await late.lookup("sync")
    await client.note("hello", False)
    got = await notices.next(STEP)
    check(got is not None and got.text == "hello", "command reaches its handler")
    other = await others.next(STEP)
    check(other is not None and other.text == "hello", "broadcast reaches everyone")
    if not BROADCAST_ONLY:
        await late.note("for late only", True)
        got = await others.next(STEP)
        check(got is not None and got.text == "for late only", "event to one client reaches it")
        await client.note("for everyone", False)
        got = await notices.next(STEP)
        check(got is not None and got.text == "for everyone", "event to one client skips the others")
    await late.close()
    await client.close()
    err = await expect(sb.NotConnectedError, client.lookup("x"))
    check(True, "a closed client fails at once")
    print("PASS", flush=True)


asyncio.run(main())
