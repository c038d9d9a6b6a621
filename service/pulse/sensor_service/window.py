"""Rolling summary of the newest readings of one sensor, ordered by reading time."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

__all__ = ["Summary", "Window"]


@dataclass(frozen=True)
class Summary:
    sensor_id: str
    min: float
    max: float
    avg: float
    size: int
    newest_ns: int
    total: int


@dataclass
class Window:
    """The ``capacity`` newest readings by time; a reading older than all of them is left out."""

    sensor_id: str
    capacity: int
    total: int = 0
    _times: list[int] = field(default_factory=list)
    _values: list[float] = field(default_factory=list)

    def add(self, time_ns: int, value: float) -> bool:
        """Count the reading; return whether it changed the window."""
        self.total += 1
        if len(self._times) >= self.capacity and time_ns < self._times[0]:
            return False
        at = bisect.bisect_right(self._times, time_ns)
        self._times.insert(at, time_ns)
        self._values.insert(at, value)
        if len(self._times) > self.capacity:
            del self._times[0], self._values[0]
        return True

    def summary(self) -> Summary:
        values = self._values
        return Summary(
            self.sensor_id,
            min(values),
            max(values),
            sum(values) / len(values),
            len(values),
            self._times[-1],
            self.total,
        )
