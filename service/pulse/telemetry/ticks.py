"""Tick spans of long streams.

A stream's own span ends only when the stream does, so a trace backend would not show a
stream that lives for hours. Every long stream therefore emits a short child span every
``telemetry.stream_tick_s`` that summarises what it did since the previous one; the first
arrives within one interval of the stream's start, whether or not the stream sent anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from opentelemetry import trace

__all__ = ["StreamTick"]

Attributes = Mapping[str, str | int | float | bool]


class StreamTick:
    def __init__(
        self,
        tracer: trace.Tracer,
        name: str,
        every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tracer, self._name, self._every, self._clock = tracer, name, every_s, clock
        self._due = clock() + every_s

    @property
    def every_s(self) -> float:
        return self._every

    def remaining_s(self) -> float:
        """Seconds until the next tick is due (never negative)."""
        return max(0.0, self._due - self._clock())

    def due(self) -> bool:
        return self._clock() >= self._due

    def emit(self, attributes: Attributes) -> None:
        """Emit the tick span now (a child of the current span, the stream's) and re-arm."""
        with self._tracer.start_as_current_span(self._name, attributes=attributes):
            pass
        self._due = self._clock() + self._every
