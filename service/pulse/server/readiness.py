"""grpc.health.v1 follows readiness: a service whose component cannot serve (its database or
bus out of reach) answers NOT_SERVING, and so does the server as a whole (service ""), so
Kubernetes' gRPC probes and health-checking load balancers route around the pod until it
heals. The drain's NOT_SERVING wins over everything (grpcio ignores later changes)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from grpc_health.v1 import health_pb2

from pulse.server.component import Component
from pulse.server.introspection import Health

__all__ = ["HealthFollower"]

_log = logging.getLogger("pulse.server")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthFollower:
    def __init__(
        self, health: Health, components: Sequence[Component], every_s: float = 1.0
    ) -> None:
        self._health = health
        self._components = list(components)
        self._every_s = every_s
        self._status: dict[str, int] = {}
        self._task: asyncio.Task | None = None

    async def update(self) -> bool:
        """Set every service's status from its component's checks; whether all serve."""
        all_ready = True
        for component in self._components:
            checks = await component.checks()
            ready = all(checks.values())
            all_ready = all_ready and ready
            for name in component.service_names:
                await self._set(name, ready, checks)
        await self._set("", all_ready, {})
        return all_ready

    async def _set(self, name: str, ready: bool, checks: dict[str, bool]) -> None:
        status = SERVING if ready else NOT_SERVING
        previous = self._status.get(name)
        if previous == status:
            return
        self._status[name] = status
        await self._health.set(name, status)
        if name and not ready:
            failing = sorted(k for k, ok in checks.items() if not ok)
            _log.warning("%s not serving: %s", name, ", ".join(failing))
        elif name and previous is not None:
            _log.info("%s serving again", name)

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="health-follower")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            try:
                await self.update()
            except Exception:  # a failing check must not stop the others from being followed
                _log.exception("readiness check failed")
