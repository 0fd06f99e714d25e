"""The transport-independent half of a client: typed calls, subscriptions, watches and goals.

Generated client classes hold a :class:`ClientCore` (made by :func:`connect`) and call it with the
specs of their interface; a transport subclass supplies the wire.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from . import _codec, _compat
from ._spec import (
    ActionSpec,
    CommandSpec,
    GoalStatus,
    InterfaceSpec,
    MethodSpec,
    PropertySpec,
    SignalSpec,
    to_declared,
)
from .errors import (
    GoalCancelledError,
    InvalidValueError,
    RemoteError,
)

log = logging.getLogger("switchboard")

T = TypeVar("T")
F = TypeVar("F")
R = TypeVar("R")

#: How long a request may take when neither the call nor the interface says otherwise.
DEFAULT_TIMEOUT = 30.0

_END = object()


class Subscription(Generic[T]):
    """A stream of signals or watched property values: ``async for value in subscription``."""

    def __init__(self, on_close: Callable[[Subscription[T]], None]) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._on_close = on_close
        self._closed = False

    def _deliver(self, value: Any) -> None:
        if not self._closed:
            self._queue.put_nowait(value)

    def _end(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(_END)

    async def next(self, timeout: float | None = None) -> T | None:
        """The next value, or ``None`` once the subscription is closed.

        Raises :class:`asyncio.TimeoutError` when ``timeout`` seconds pass without a value.
        """
        if self._closed and self._queue.empty():
            return None
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if item is _END:
            self._queue.put_nowait(_END)
            return None
        value: T = item
        return value

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        value = await self.next()
        if value is None:
            raise StopAsyncIteration
        return value

    def close(self) -> None:
        """Stops the stream; values already received can still be read."""
        if not self._closed:
            self._end()
            self._on_close(self)


class Goal(Generic[F, R]):
    """A goal sent to (or attached on) an action: its feedback, status, cancellation and result."""

    def __init__(self, core: ClientCore, spec: ActionSpec, goal_id: str) -> None:
        self._core = core
        self._spec = spec
        self.id = goal_id
        self.status = GoalStatus.ACCEPTED
        self._feedback: asyncio.Queue[Any] = asyncio.Queue()
        self._finished: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def _on_status(self, state: dict[str, Any]) -> None:
        try:
            status = GoalStatus(state.get("status"))
        except ValueError:
            log.warning("goal %s: unknown status %r", self.id, state.get("status"))
            return
        if self._finished.done():
            return
        if status.is_end:
            self._finish(state, status)
        elif status is not GoalStatus.ACCEPTED or self.status is GoalStatus.ACCEPTED:
            self.status = status

    def _finish(self, state: dict[str, Any], status: GoalStatus) -> None:
        self.status = status
        if status is GoalStatus.SUCCEEDED:
            try:
                value = self._spec.result.from_wire(state.get("result") or {}, "result")
                self._finished.set_result(value)
            except InvalidValueError as error:
                self._finished.set_exception(error)
        elif status is GoalStatus.CANCELLED:
            self._finished.set_exception(GoalCancelledError(f"goal {self.id} was cancelled"))
        else:
            err = state.get("error") or {}
            remote = RemoteError(
                int(err.get("code", 13)),
                str(err.get("name", "UnknownError")),
                str(err.get("message", "")),
                err.get("details"),
            )
            self._finished.set_exception(to_declared(remote, self._spec.errors))
        self._finished.exception()  # never "exception was never retrieved"
        self._feedback.put_nowait(_END)
        self._core._goal_ended(self)

    def _on_feedback(self, data: Any) -> None:
        try:
            self._feedback.put_nowait(self._spec.feedback.from_wire(data, "feedback"))
        except InvalidValueError as error:
            log.warning("goal %s: bad feedback dropped: %s", self.id, error)

    def _fail(self, error: Exception) -> None:
        if not self._finished.done():
            self._finished.set_exception(error)
            self._finished.exception()
            self._feedback.put_nowait(_END)

    async def next_feedback(self, timeout: float | None = None) -> F | None:
        """The next feedback, or ``None`` once the goal has ended and every feedback was read."""
        if self._feedback.empty() and self._finished.done():
            return None
        item = await asyncio.wait_for(self._feedback.get(), timeout)
        if item is _END:
            self._feedback.put_nowait(_END)
            return None
        value: F = item
        return value

    async def result(self, timeout: float | None = None) -> R:
        """Waits for the end: the result, or the error (:class:`GoalCancelledError`, a declared
        error, :class:`RemoteError`) the goal ended with."""
        value: R = await asyncio.wait_for(asyncio.shield(self._finished), timeout)
        return value

    async def cancel(self) -> GoalStatus:
        """Asks the server to cancel; returns the goal's status at that moment."""
        state = await self._core._cancel_goal(self._spec, self.id)
        status = GoalStatus(state.get("status"))
        if status.is_end:
            self._on_status(state)
        return status

    @property
    def done(self) -> bool:
        return self._finished.done()


class ClientCore:
    """Spec-level client operations; transports implement the ``_wire_*`` methods."""

    def __init__(self, spec: InterfaceSpec, timeout: float | None) -> None:
        self.spec = spec
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self._signal_subs: dict[str, set[Subscription[Any]]] = {}
        self._watch_subs: dict[str, set[Subscription[Any]]] = {}
        self._goals: dict[str, Goal[Any, Any]] = {}
        self._goal_actions: dict[str, ActionSpec] = {}
        #: The members (``(section, name)``) this client has and the server it talks to lacks,
        #: learnt from the server's description at connect time (see ``_compat.check``).
        self._lacking: set[tuple[str, str]] = set()
        self._server_summary = ""

    def _agreed(self, server_hello: dict[str, Any]) -> None:
        """Checks the server's handshake (``_compat.check``) and remembers what it lacks."""
        self._lacking = _compat.check(self.hello(), server_hello)
        self._server_summary = _compat.summary(server_hello)

    def _unless_lacking(self, section: str, name: str) -> None:
        """Fails a use of a member the server lacks, before anything is sent."""
        if (section, name) in self._lacking:
            raise _compat.refusal(section, name, self._server_summary)

    def hello(self, instance: str = "") -> dict[str, Any]:
        """The Hello this client describes itself with, with its interface description."""
        hello: dict[str, Any] = {
            "protocol": 1,
            "interface": self.spec.name,
            "version": self.spec.version,
            "hash": self.spec.hash,
            "instance": instance,
        }
        description = self.spec.parsed_description()
        if description is not None:
            hello["description"] = description
        return hello

    # --- transport hooks -----------------------------------------------------------------------

    async def _wire_call(self, name: str, args: dict[str, Any], timeout: float) -> Any:
        raise NotImplementedError

    async def _wire_get(self, name: str, timeout: float) -> Any:
        raise NotImplementedError

    async def _wire_set(self, name: str, value: dict[str, Any], timeout: float) -> Any:
        raise NotImplementedError

    async def _wire_watch(self, name: str, on: bool) -> None:
        raise NotImplementedError

    async def _wire_subscribe(self, name: str, on: bool) -> None:
        raise NotImplementedError

    async def _wire_command(self, name: str, args: dict[str, Any]) -> None:
        raise NotImplementedError

    async def _wire_goal(
        self, kind: str, action: str, payload: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    # --- what transports call when something arrives --------------------------------------------

    def _on_signal(self, name: str, data: Any) -> None:
        subs = self._signal_subs.get(name)
        spec = self.spec.signals.get(name)
        if not subs or spec is None:
            return
        try:
            value = spec.value.from_wire(data, name)
        except InvalidValueError as error:
            log.warning("signal `%s` dropped: %s", name, error)
            return
        for sub in list(subs):
            sub._deliver(value)

    def _on_property_value(self, name: str, data: Any) -> None:
        subs = self._watch_subs.get(name)
        spec = self.spec.properties.get(name)
        if not subs or spec is None:
            return
        try:
            value = spec.value.from_wire(data, name)
        except InvalidValueError as error:
            log.warning("value of property `%s` dropped: %s", name, error)
            return
        for sub in list(subs):
            sub._deliver(value)

    def _on_goal_event(self, kind: str, data: Any) -> None:
        if not isinstance(data, dict):
            return
        goal = self._goals.get(str(data.get("goal")))
        if goal is None:
            return
        if kind == "feedback":
            goal._on_feedback(data.get("feedback"))
        else:
            goal._on_status(data)

    def _goal_ended(self, goal: Goal[Any, Any]) -> None:
        self._goals.pop(goal.id, None)

    def _fail_all(self, error: Exception) -> None:
        for goal in list(self._goals.values()):
            goal._fail(error)
        self._goals.clear()

    def _end_subscriptions(self) -> None:
        for subs in list(self._signal_subs.values()) + list(self._watch_subs.values()):
            for sub in list(subs):
                sub._end()
        self._signal_subs.clear()
        self._watch_subs.clear()

    # --- what generated code calls --------------------------------------------------------------

    async def call(self, spec: MethodSpec, args: list[Any], timeout: float | None) -> Any:
        self._unless_lacking("methods", spec.name)
        data = spec.args.args_to_wire(args, spec.name)
        limit = timeout if timeout is not None else (spec.timeout or self.timeout)
        try:
            reply = await self._wire_call(spec.name, data, limit)
        except RemoteError as error:
            raise to_declared(error, spec.errors) from None
        return spec.returns.from_wire(reply, spec.name)

    async def get_property(self, spec: PropertySpec, timeout: float | None) -> Any:
        self._unless_lacking("properties", spec.name)
        data = await self._wire_get(spec.name, self.timeout if timeout is None else timeout)
        return spec.value.from_wire(data, spec.name)

    async def set_property(self, spec: PropertySpec, value: Any, timeout: float | None) -> Any:
        self._unless_lacking("properties", spec.name)
        if spec.read_only:
            raise RemoteError(10, "ReadOnlyProperty", f"property `{spec.name}` is read-only")
        data = spec.value.to_wire(value, spec.name)
        reply = await self._wire_set(spec.name, data, self.timeout if timeout is None else timeout)
        return spec.value.from_wire(reply, spec.name)

    async def watch_property(self, spec: PropertySpec) -> Subscription[Any]:
        self._unless_lacking("properties", spec.name)
        subs = self._watch_subs.setdefault(spec.name, set())
        sub: Subscription[Any] = Subscription(lambda s: self._drop(self._watch_subs, spec.name, s))
        first = not subs
        subs.add(sub)
        if first:
            try:
                await self._wire_watch(spec.name, True)
            except BaseException:
                subs.discard(sub)
                raise
        return sub

    async def subscribe(self, spec: SignalSpec) -> Subscription[Any]:
        self._unless_lacking("signals", spec.name)
        subs = self._signal_subs.setdefault(spec.name, set())
        sub: Subscription[Any] = Subscription(
            lambda s: self._drop(self._signal_subs, spec.name, s)
        )
        first = not subs
        subs.add(sub)
        if first:
            try:
                await self._wire_subscribe(spec.name, True)
            except BaseException:
                subs.discard(sub)
                raise
        return sub

    def _drop(self, table: dict[str, set[Subscription[Any]]], name: str, sub: Any) -> None:
        subs = table.get(name)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            off = self._wire_watch if table is self._watch_subs else self._wire_subscribe
            task = asyncio.get_running_loop().create_task(off(name, False))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def command(self, spec: CommandSpec, args: list[Any]) -> None:
        self._unless_lacking("commands", spec.name)
        await self._wire_command(spec.name, spec.args.args_to_wire(args, spec.name))

    async def send_goal(self, spec: ActionSpec, args: list[Any]) -> Goal[Any, Any]:
        self._unless_lacking("actions", spec.name)
        data = spec.goal.args_to_wire(args, spec.name)
        goal_id = str(uuid.uuid4())
        goal: Goal[Any, Any] = Goal(self, spec, goal_id)
        self._goals[goal_id] = goal
        self._goal_actions[goal_id] = spec
        try:
            state = await self._wire_goal(
                "send", spec.name, {"goal": goal_id, "args": data}, self.timeout
            )
        except RemoteError as error:
            self._goals.pop(goal_id, None)
            raise to_declared(error, spec.errors) from None
        except BaseException:
            self._goals.pop(goal_id, None)
            raise
        goal._on_status(state)
        return goal

    async def attach_goal(self, spec: ActionSpec, goal_id: str) -> Goal[Any, Any]:
        self._unless_lacking("actions", spec.name)
        goal: Goal[Any, Any] = Goal(self, spec, goal_id)
        self._goals[goal_id] = goal
        self._goal_actions[goal_id] = spec
        try:
            state = await self._wire_goal(
                "attach", spec.name, {"goal": goal_id, "follow": True}, self.timeout
            )
        except BaseException:
            self._goals.pop(goal_id, None)
            raise
        goal._on_status(state)
        return goal

    async def _cancel_goal(self, spec: ActionSpec, goal_id: str) -> dict[str, Any]:
        return await self._wire_goal("cancel", spec.name, {"goal": goal_id}, self.timeout)


def encode_check(value: Any) -> bytes:
    return _codec.dumps(value)
