"""An absolute, drift-free schedule of samples spread evenly over each cycle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import NamedTuple, Protocol

__all__ = ["Clock", "Slot", "SystemClock", "slots"]


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class Slot(NamedTuple):
    """One sample's place: its index in the cycle, when it was due and how late it came (a
    tuple: one is made per sample)."""

    cycle: int
    index: int
    due_wall: float
    lag: float
    skipped: int  # samples skipped just before this one because the stream fell behind


async def slots(clock: Clock, interval: float, per_cycle: int) -> AsyncIterator[Slot]:
    """Yield ``per_cycle`` slots per ``interval``, at start + cycle*interval + k*interval/n.

    Due times are computed from the start, never from the previous sample, so delays do not
    accumulate. When a whole cycle or more has passed, those cycles are skipped (and counted)
    rather than sent in a burst.
    """
    start_mono, start_wall = clock.monotonic(), clock.wall()
    step = interval / per_cycle
    cycle = 0
    skipped = 0
    while True:
        for index in range(per_cycle):
            due = start_mono + cycle * interval + index * step
            now = clock.monotonic()
            if now < due:
                await clock.sleep(due - now)
                now = clock.monotonic()
            yield Slot(cycle, index, start_wall + (due - start_mono), max(0.0, now - due), skipped)
            skipped = 0
        cycle += 1
        behind = int((clock.monotonic() - (start_mono + cycle * interval)) // interval)
        if behind >= 1:
            cycle += behind
            skipped = behind * per_cycle
