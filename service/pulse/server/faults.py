"""Fault injection for demos and alert tests: per method, an error rate and added latency.

Only active when ``faults.enabled``; changed at run time through the admin port.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import grpc

from pulse.server.handlers import is_skipped, wrap_before
from pulse.telemetry import conventions as c
from pulse.telemetry.instruments import Instruments
from pulse.validation import echo

__all__ = ["Fault", "FaultError", "FaultInterceptor", "FaultRegistry"]

MAX_LATENCY_MS = 60_000


class FaultError(ValueError):
    """A fault specification that cannot be applied; the message names the key."""


@dataclass(frozen=True)
class Fault:
    error_rate: float = 0.0
    latency_ms: int = 0


class FaultRegistry:
    """The faults in force, keyed by full method name (``/pulse.v1.LogService/Ingest``)."""

    def __init__(self, methods: Iterable[str], rng: random.Random | None = None) -> None:
        self._methods = frozenset(methods)
        self._faults: dict[str, Fault] = {}
        self._rng = rng or random.Random()

    def replace(self, spec: Any) -> None:
        """Replace every fault with ``spec``; validate all first so a bad spec changes nothing."""
        self._faults = self._parse(spec)

    def clear(self) -> None:
        self._faults = {}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {method: asdict(fault) for method, fault in sorted(self._faults.items())}

    def get(self, method: str) -> Fault | None:
        return self._faults.get(method)

    def should_fail(self, fault: Fault) -> bool:
        return fault.error_rate > 0 and self._rng.random() < fault.error_rate

    def _parse(self, spec: Any) -> dict[str, Fault]:
        if not isinstance(spec, Mapping):
            raise FaultError("body must be an object of full method names to faults")
        return {method: self._parse_one(method, value) for method, value in spec.items()}

    def _parse_one(self, method: str, value: Any) -> Fault:
        if method not in self._methods:
            allowed = ", ".join(sorted(self._methods))
            raise FaultError(f"unknown method {echo(method)}; allowed: {allowed}")
        if not isinstance(value, Mapping):
            raise FaultError(f"{method}: must be an object with error_rate and/or latency_ms")
        unknown = set(value) - {"error_rate", "latency_ms"}
        if unknown:
            raise FaultError(
                f"{method}: unknown keys {echo(sorted(unknown))}; allowed: error_rate, latency_ms"
            )
        rate = value.get("error_rate", 0.0)
        latency = value.get("latency_ms", 0)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise FaultError(f"{method}.error_rate: {echo(rate)} is not a number in [0, 1]")
        if (
            isinstance(latency, bool)
            or not isinstance(latency, int)
            or not 0 <= latency <= MAX_LATENCY_MS
        ):
            raise FaultError(
                f"{method}.latency_ms: {echo(latency)} is not an integer in [0, {MAX_LATENCY_MS}]"
            )
        return Fault(float(rate), latency)


class FaultInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, registry: FaultRegistry, instruments: Instruments) -> None:
        self._registry = registry
        self._instruments = instruments

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or is_skipped(details.method):
            return handler
        method = details.method

        async def inject(context: grpc.aio.ServicerContext) -> None:
            fault = self._registry.get(method)
            if fault is None:
                return
            if fault.latency_ms:
                self._count(method, "latency")
                await asyncio.sleep(fault.latency_ms / 1000)
            if self._registry.should_fail(fault):
                self._count(method, "error")
                await context.abort(grpc.StatusCode.UNAVAILABLE, "injected fault")

        return wrap_before(handler, inject)

    def _count(self, method: str, kind: str) -> None:
        self._instruments.faults_injected.add(
            1, {c.RPC_METHOD: method[1:], c.ATTR_FAULT_KIND: kind}
        )
