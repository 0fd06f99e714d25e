"""A blocking API for scripts: one private event loop in a daemon thread runs every coroutine."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, Generic, TypeVar

from ._spec import GoalStatus
from .client import Goal, Subscription

T = TypeVar("T")
F = TypeVar("F")
R = TypeVar("R")


class Runner:
    """Runs coroutines on an event loop in a background thread and waits for their results."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="switchboard-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs ``coro`` on the loop and returns its result (or raises its exception)."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("blocking switchboard calls cannot be made from a callback")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


_runner: Runner | None = None
_lock = threading.Lock()


def runner() -> Runner:
    """The process's shared runner, started on first use."""
    global _runner
    with _lock:
        if _runner is None:
            _runner = Runner()
        return _runner


class BlockingSubscription(Generic[T]):
    """A subscription read by blocking calls: ``for value in subscription``."""

    def __init__(self, inner: Subscription[T], runner: Runner) -> None:
        self._inner = inner
        self._runner = runner

    def next(self, timeout: float | None = None) -> T | None:
        """The next value, or ``None`` once closed; raises ``TimeoutError`` after ``timeout``."""
        try:
            return self._runner.run(self._inner.next(timeout))
        except asyncio.TimeoutError:
            raise TimeoutError(f"no value within {timeout} s") from None

    def __iter__(self) -> Iterator[T]:
        while True:
            value = self.next()
            if value is None:
                return
            yield value

    def close(self) -> None:
        async def close() -> None:
            self._inner.close()

        self._runner.run(close())


class BlockingGoal(Generic[F, R]):
    """A goal driven by blocking calls."""

    def __init__(self, inner: Goal[F, R], runner: Runner) -> None:
        self._inner = inner
        self._runner = runner

    @property
    def id(self) -> str:
        return self._inner.id

    @property
    def status(self) -> GoalStatus:
        return self._inner.status

    def next_feedback(self, timeout: float | None = None) -> F | None:
        try:
            return self._runner.run(self._inner.next_feedback(timeout))
        except asyncio.TimeoutError:
            raise TimeoutError(f"no feedback within {timeout} s") from None

    def result(self, timeout: float | None = None) -> R:
        try:
            return self._runner.run(self._inner.result(timeout))
        except asyncio.TimeoutError:
            raise TimeoutError(f"the goal did not end within {timeout} s") from None

    def cancel(self) -> GoalStatus:
        return self._runner.run(self._inner.cancel())
