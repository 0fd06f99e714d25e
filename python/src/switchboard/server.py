"""The transport-independent half of a server: dispatch to handlers, property state, goals.

Generated server classes hold a :class:`ServerCore`; transports (Unix socket, MQTT) feed it
requests and carry what it publishes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from . import _codec
from ._spec import ActionSpec, GoalStatus, InterfaceSpec, PropertySpec, SignalSpec
from .errors import (
    INTERNAL_MESSAGE,
    DeclaredError,
    ErrorCode,
    GoalCancelledError,
    InvalidValueError,
    NotConnectedError,
    RemoteError,
)

log = logging.getLogger("switchboard.server")

F = TypeVar("F")

#: How long an ended goal is remembered for late attach and cancel requests.
GOAL_RETENTION = 60.0
#: How long a running goal outlives its owner's connection before it is cancelled.
DISCONNECT_GRACE = 10.0


@dataclass(frozen=True)
class CallContext:
    """Who is calling: ``peer`` identifies the client connection (for events to one client)."""

    peer: int


class ServerTransport(Protocol):
    def broadcast_signal(self, name: str, payload: bytes) -> None: ...

    def send_signal_to(self, peer: int, name: str, payload: bytes) -> bool: ...

    def publish_property(self, name: str, version: int, payload: bytes) -> None: ...

    def send_goal_event(
        self, peers: list[int], kind: str, action: str, data: Any, code: int
    ) -> None: ...

    async def close(self) -> None: ...


class _GoalRun:
    def __init__(self, spec: ActionSpec, goal_id: str, owner: int, args: list[Any]) -> None:
        self.spec = spec
        self.id = goal_id
        self.owner: int | None = owner
        self.followers: set[int] = {owner}
        self.args = args
        self.status = GoalStatus.ACCEPTED
        self.end: dict[str, Any] = {}
        self.cancel = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.grace: asyncio.TimerHandle | None = None
        self.ended_at = 0.0

    def state(self) -> dict[str, Any]:
        if self.end:
            return dict(self.end)
        return {"goal": self.id, "status": self.status.value}


class GoalContext(Generic[F]):
    """What a goal handler gets: the caller, feedback and cancellation."""

    def __init__(self, core: ServerCore, run: _GoalRun, ctx: CallContext) -> None:
        self._core = core
        self._run = run
        self.ctx = ctx
        self.id = run.id

    async def feedback(self, value: F) -> None:
        """Sends one feedback to every connection following the goal."""
        data = self._run.spec.feedback.to_wire(value, "feedback")
        self._core._goal_event(self._run, "feedback", {"goal": self.id, "feedback": data})

    @property
    def cancelled(self) -> bool:
        """Whether a client asked to cancel the goal."""
        return self._run.cancel.is_set()

    async def wait_cancelled(self) -> None:
        """Returns once a client asked to cancel the goal."""
        await self._run.cancel.wait()

    async def sleep(self, seconds: float) -> None:
        """Sleeps; raises :class:`GoalCancelledError` if the goal is cancelled first."""
        if self.cancelled:
            raise GoalCancelledError(f"goal {self.id} was cancelled")
        try:
            await asyncio.wait_for(self._run.cancel.wait(), seconds)
        except asyncio.TimeoutError:
            return
        raise GoalCancelledError(f"goal {self.id} was cancelled")


def _error_body(error: RemoteError) -> dict[str, Any]:
    body: dict[str, Any] = {"message": error.message}
    details = error._sb_details() if isinstance(error, DeclaredError) else error.details
    if details is not None:
        body["details"] = details
    return body


class ServerCore:
    """One served interface instance."""

    def __init__(
        self, spec: InterfaceSpec, handler: Any, properties: dict[str, Any], instance: str
    ) -> None:
        self.spec = spec
        self.handler = handler
        self.instance = instance
        self.transports: list[ServerTransport] = []
        self._props: dict[str, tuple[int, Any, bytes]] = {}
        for name, pspec in spec.properties.items():
            if name not in properties:
                raise ValueError(f"no initial value for property `{name}`")
            value = properties[name]
            payload = _codec.dumps(pspec.value.to_wire(value, name))
            self._props[name] = (1, value, payload)
        self._goals: dict[str, _GoalRun] = {}
        self._follow_after_reply: dict[tuple[int, str], bool] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.action_limits: dict[str, int] = {}
        self.disconnect_grace: float | None = DISCONNECT_GRACE

    # --- what generated code calls --------------------------------------------------------------

    async def emit(self, spec: SignalSpec, value: Any) -> None:
        payload = _codec.dumps(spec.value.to_wire(value, spec.name))
        for transport in self.transports:
            transport.broadcast_signal(spec.name, payload)

    async def emit_to(self, peer: int, spec: SignalSpec, value: Any) -> None:
        payload = _codec.dumps(spec.value.to_wire(value, spec.name))
        if not any(t.send_signal_to(peer, spec.name, payload) for t in self.transports):
            raise NotConnectedError(f"client {peer} is not connected")

    def property(self, spec: PropertySpec) -> Any:
        return self._props[spec.name][1]

    async def set_property(self, spec: PropertySpec, value: Any) -> None:
        payload = _codec.dumps(spec.value.to_wire(value, spec.name))
        self._store(spec.name, value, payload)

    def _store(self, name: str, value: Any, payload: bytes) -> int:
        version = self._props[name][0] + 1
        self._props[name] = (version, value, payload)
        for transport in self.transports:
            transport.publish_property(name, version, payload)
        return version

    async def close(self) -> None:
        for run in self._goals.values():
            if run.task is not None:
                run.task.cancel()
        for transport in self.transports:
            await transport.close()
        self.transports.clear()

    # --- what transports call -------------------------------------------------------------------

    def _property_state(self, name: str) -> tuple[int, bytes] | None:
        state = self._props.get(name)
        return None if state is None else (state[0], state[2])

    async def _call(self, peer: int, name: str, payload: bytes) -> tuple[int, str, bytes]:
        spec = self.spec.methods.get(name)
        if spec is None:
            message = f"interface {self.spec.name} has no method `{name}`"
            return 9, "UnknownMethod", _codec.dumps({"message": message})
        try:
            args = spec.args.args_from_wire(_codec.loads(payload), "")
        except (ValueError, InvalidValueError) as error:
            message = f"invalid arguments for `{name}`: {error}"
            return 8, "InvalidArguments", _codec.dumps({"message": message})
        try:
            result = await getattr(self.handler, spec.attr)(CallContext(peer), *args)
            return 0, "", _codec.dumps(spec.returns.to_wire(result, name))
        except RemoteError as error:
            return int(error.code), error.name, _codec.dumps(_error_body(error))
        except Exception:
            log.exception("handler of `%s` failed", name)
            return 2, "Internal", _codec.dumps({"message": INTERNAL_MESSAGE})

    async def _set_property(
        self, peer: int, name: str, payload: bytes, version: int | None
    ) -> tuple[int, int, bytes]:
        """Handles an update; answers (code, current version, payload)."""
        spec = self.spec.properties.get(name)
        if spec is None:
            body = {
                "error": "UnknownProperty",
                "message": f"interface {self.spec.name} has no property `{name}`",
                "value": None,
            }
            return 9, 0, _codec.dumps(body)
        current, _, current_payload = self._props[name]

        def refuse(code: int, error: str, message: str) -> tuple[int, int, bytes]:
            body = {
                "error": error,
                "message": message,
                "value": _codec.loads(current_payload),
            }
            return code, current, _codec.dumps(body)

        if spec.read_only:
            return refuse(10, "ReadOnlyProperty", f"property `{name}` is read-only")
        # Versions start at 1: a missing version or 0 ("none seen") is never current.
        if version is None or version != current:
            return refuse(
                12,
                "OutOfSync",
                f"update of property `{name}` was based on version {version}, "
                f"but the current version is {current}",
            )
        try:
            value = spec.value.from_wire(_codec.loads(payload), "")
            new_payload = _codec.dumps(spec.value.to_wire(value, name))
        except (ValueError, InvalidValueError) as error:
            return refuse(8, "InvalidArguments", f"invalid value for `{name}`: {error}")
        version = self._store(name, value, new_payload)
        return 0, version, new_payload

    async def _command(self, peer: int, name: str, payload: bytes) -> None:
        spec = self.spec.commands.get(name)
        if spec is None:
            log.warning("unknown command `%s`", name)
            return
        try:
            args = spec.args.args_from_wire(_codec.loads(payload), "")
            await getattr(self.handler, spec.attr)(CallContext(peer), *args)
        except (ValueError, InvalidValueError) as error:
            log.warning("command `%s` with bad arguments: %s", name, error)
        except Exception:
            log.exception("handler of command `%s` failed", name)

    async def _goal_request(
        self, peer: int, op: str, action: str, payload: bytes
    ) -> tuple[int, str, dict[str, Any]]:
        self._forget_old_goals()
        try:
            data = _codec.loads(payload)
        except ValueError:
            data = None
        goal_id = str(data.get("goal", "")) if isinstance(data, dict) else ""

        def fail(code: int, name: str, message: str, details: Any = None) -> tuple[int, str, dict[str, Any]]:
            body: dict[str, Any] = {"goal": goal_id, "message": message}
            if details is not None:
                body["details"] = details
            return code, name, body

        spec = self.spec.actions.get(action)
        if spec is None:
            return fail(9, "UnknownAction", f"interface {self.spec.name} has no action `{action}`")
        if not isinstance(data, dict) or not goal_id:
            return fail(8, "InvalidArguments", "the request carries no goal id")
        if op != "send":
            run = self._goals.get(goal_id)
            if run is None or run.spec is not spec:
                return fail(9, "UnknownGoal", f"no goal `{goal_id}` of action `{action}`")
            if op == "cancel":
                if not run.end and run.status is not GoalStatus.CANCELING:
                    run.status = GoalStatus.CANCELING
                    self._goal_event(run, "status", run.state())
                    run.cancel.set()
                return 0, "", run.state()
            if data.get("follow") is True:
                self._follow_after_reply[(peer, goal_id)] = True
            return 0, "", run.state()
        if goal_id in self._goals:
            return fail(1, "DuplicateGoal", f"goal id `{goal_id}` is already in use")
        try:
            args = spec.goal.args_from_wire(data.get("args", {}), "")
        except InvalidValueError as error:
            return fail(8, "InvalidArguments", f"invalid goal for `{action}`: {error}")
        limit = self.action_limits.get(action)
        if limit is not None:
            running = sum(1 for r in self._goals.values() if r.spec is spec and not r.end)
            if running >= limit:
                return fail(
                    15, "TooManyGoals", f"action `{action}` already runs {running} goals"
                )
        accept = getattr(self.handler, f"accept_{spec.attr}", None)
        if accept is not None and spec.goal_cls is not None:
            try:
                await accept(CallContext(peer), spec.goal_cls(**spec.goal.keywords(args)))
            except RemoteError as error:
                details = error._sb_details() if isinstance(error, DeclaredError) else error.details
                return fail(int(error.code), error.name, error.message, details)
            except Exception:
                log.exception("acceptance of a goal of `%s` failed", action)
                return fail(2, "Internal", INTERNAL_MESSAGE)
        self._goals[goal_id] = _GoalRun(spec, goal_id, peer, args)
        return 0, "", {"goal": goal_id, "status": "accepted"}

    def _goal_replied(self, peer: int, op: str, body: dict[str, Any]) -> None:
        goal_id = str(body.get("goal"))
        run = self._goals.get(goal_id)
        if run is None:
            return
        if op == "send" and run.task is None:
            run.task = asyncio.get_running_loop().create_task(self._run_goal(run, peer))
        elif op == "attach" and self._follow_after_reply.pop((peer, goal_id), False):
            run.followers.add(peer)
            run.owner = peer
            if run.grace is not None:
                run.grace.cancel()
                run.grace = None

    async def _run_goal(self, run: _GoalRun, peer: int) -> None:
        if run.status is GoalStatus.ACCEPTED:
            run.status = GoalStatus.EXECUTING
            self._goal_event(run, "status", run.state())
        ctx: GoalContext[Any] = GoalContext(self, run, CallContext(peer))
        code = 0
        try:
            result = await getattr(self.handler, run.spec.attr)(ctx, *run.args)
            end: dict[str, Any] = {
                "goal": run.id,
                "status": "succeeded",
                "result": run.spec.result.to_wire(result, "result"),
            }
        except GoalCancelledError:
            end = {"goal": run.id, "status": "cancelled"}
        except asyncio.CancelledError:
            end = {"goal": run.id, "status": "cancelled"}
        except RemoteError as error:
            code = int(error.code)
            err = {"name": error.name, "code": code, **_error_body(error)}
            end = {"goal": run.id, "status": "failed", "error": err}
        except Exception:
            log.exception("goal handler of `%s` failed", run.spec.name)
            code = int(ErrorCode.SERVER_ERROR)
            err = {"name": "Internal", "code": code, "message": INTERNAL_MESSAGE}
            end = {"goal": run.id, "status": "failed", "error": err}
        run.end = end
        run.status = GoalStatus(end["status"])
        run.ended_at = time.monotonic()
        self._goal_event(run, "finished", end, code)

    def _goal_event(self, run: _GoalRun, kind: str, data: Any, code: int = 0) -> None:
        for transport in self.transports:
            transport.send_goal_event(sorted(run.followers), kind, run.spec.name, data, code)

    def _forget_old_goals(self) -> None:
        now = time.monotonic()
        for goal_id, run in list(self._goals.items()):
            if run.end and now - run.ended_at > GOAL_RETENTION:
                del self._goals[goal_id]

    def _peer_left(self, peer: int) -> None:
        for run in self._goals.values():
            run.followers.discard(peer)
            if run.owner == peer and not run.end:
                run.owner = None
                if self.disconnect_grace is not None and run.grace is None:
                    run.grace = asyncio.get_running_loop().call_later(
                        self.disconnect_grace, self._grace_over, run
                    )

    def _grace_over(self, run: _GoalRun) -> None:
        run.grace = None
        if run.owner is None and not run.end and not run.followers:
            run.status = GoalStatus.CANCELING
            run.cancel.set()
