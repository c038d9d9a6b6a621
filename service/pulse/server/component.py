"""The interface every service area implements so the server can assemble it."""

from __future__ import annotations

from typing import Protocol

import grpc

__all__ = ["Component"]


class Component(Protocol):
    """One service area (metrics, logs, sensors) with its lifecycle."""

    service_names: tuple[str, ...]

    def register(self, server: grpc.aio.Server) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def checks(self) -> dict[str, bool]:
        """Readiness checks of the area, each True when healthy (asked on every /readyz)."""
        ...
