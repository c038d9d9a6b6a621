"""Where sensor readings and summaries live, behind one small protocol, so the servicer does
not care which runs: embedded (SQLite in the data directory and summaries in memory, for one
process) or shared (PostgreSQL, for several replicas).

Both insert a reading once by its id, keep per sensor the summary of its newest ``window``
readings by reading time, and tell every subscriber of every new summary, whichever replica
recorded the reading.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from pulse.sensor_service.store import Reading
from pulse.sensor_service.window import Summary

__all__ = ["SensorState", "StateUnavailable", "SummaryListener"]

SummaryListener = Callable[[Summary], None]


class StateUnavailable(Exception):
    """The state cannot be reached now; the message says what failed. Callers answer
    UNAVAILABLE: the client may retry, readings are inserted once by id."""


class SensorState(Protocol):
    async def start(self) -> None:
        """Open the state; a shared one keeps trying in the background until it is reached."""
        ...

    async def stop(self) -> None: ...

    async def record(self, reading: Reading) -> bool:
        """Insert ``reading`` unless its id is known and commit it; True when it was new.
        Raises ``StateUnavailable``."""
        ...

    async def summary(self, sensor_id: str) -> Summary | None:
        """The sensor's current summary, or None when it has no readings."""
        ...

    async def summaries(self, sensor_ids: Iterable[str] = ()) -> list[Summary]:
        """The current summaries of ``sensor_ids`` (of every sensor when empty)."""
        ...

    def listen(self, listener: SummaryListener) -> None:
        """Call ``listener`` with every new summary, from any replica, on the event loop."""
        ...

    async def healthy(self) -> bool:
        """Whether calls can be served now (readiness)."""
        ...
