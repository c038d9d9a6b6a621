"""Shapes and schedule of StreamMetrics, without a server."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys

import pytest

from pulse.metrics_service.fleet import build_fleet, matching
from pulse.metrics_service.schedule import slots
from pulse.metrics_service.signals import SIGNALS


@pytest.mark.parametrize("name", list(SIGNALS))
def test_values_stay_within_physical_bounds(name: str) -> None:
    signal = SIGNALS[name]
    values = [signal.value(7, s, t * 0.7) for s in range(4) for t in range(3000)]
    assert all(math.isfinite(v) for v in values)
    assert min(values) >= signal.low
    assert max(values) <= signal.high


def test_shapes_are_the_same_in_another_process_and_differ_per_seed_and_source() -> None:
    """Two Pulse processes with one seed stream the same shapes (no per-process hashing)."""
    probe = (
        "from pulse.metrics_service.signals import SIGNALS;"
        "print(repr([s.value(1, 0, 123.4) for s in SIGNALS.values()]))"
    )
    other = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert other.stdout.strip() == repr([s.value(1, 0, 123.4) for s in SIGNALS.values()])
    cpu = SIGNALS["cpu_usage"].value
    assert cpu(1, 0, 123.4) != cpu(2, 0, 123.4)
    assert cpu(1, 0, 123.4) != cpu(1, 1, 123.4)


def test_memory_is_a_percentage_that_creeps_up_then_drops() -> None:
    signal = SIGNALS["memory_usage"]
    assert (signal.unit, signal.low, signal.high) == ("percent", 0, 100)
    series = [signal.value(0, 0, float(t)) for t in range(0, 1200)]
    assert all(0 <= v <= 100 for v in series)
    drops = [i for i in range(1, len(series)) if series[i] < series[i - 1] - 30]
    assert drops, "garbage collections drop memory sharply"
    rises = sum(1 for i in range(1, len(series)) if series[i] > series[i - 1])
    assert rises > len(series) * 0.5


def test_error_rate_is_mostly_low_with_spikes() -> None:
    errors = SIGNALS["error_rate"].value
    series = [errors(3, s, float(t)) for s in range(4) for t in range(0, 6000, 3)]
    low = sum(1 for v in series if v < 1.5)
    assert low > 0.8 * len(series)
    assert max(series) > 4


def test_disk_bursts_above_its_baseline() -> None:
    disk = SIGNALS["disk_io"].value
    series = [disk(0, 0, float(t)) for t in range(0, 3000, 5)]
    assert max(series) > 50
    assert sorted(series)[len(series) // 2] < 15


def test_fleet_spreads_hosts_over_regions_and_filters_by_all_pairs() -> None:
    fleet = build_fleet(4, ["a", "b"])
    assert [s.labels["region"] for s in fleet] == ["a", "b", "a", "b"]
    assert len(matching(fleet, {"region": "a"})) == 2
    assert len(matching(fleet, {"region": "a", "host": "host-02"})) == 0
    assert len(matching(fleet, {})) == 4


class FakeClock:
    def __init__(self, lag_per_sleep: float = 0.0) -> None:
        self.now = 1000.0
        self.lag = lag_per_sleep
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + 5_000_000

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + self.lag


async def _take(clock: FakeClock, interval: float, per_cycle: int, n: int) -> list:
    out = []
    async for slot in slots(clock, interval, per_cycle):
        out.append(slot)
        if len(out) == n:
            return out
    return out


async def test_samples_are_spread_evenly_inside_a_cycle() -> None:
    taken = await _take(FakeClock(), 1.0, 4, 8)
    dues = [s.due_wall for s in taken]
    gaps = [round(b - a, 9) for a, b in itertools.pairwise(dues)]
    assert gaps == [0.25] * 7


async def test_schedule_does_not_drift_when_every_sleep_overruns() -> None:
    clock = FakeClock(lag_per_sleep=0.01)
    taken = await _take(clock, 0.1, 2, 2000)
    start = taken[0].due_wall
    assert taken[-1].due_wall == pytest.approx(start + 999 * 0.1 + 0.05)
    assert max(s.lag for s in taken) <= 0.0100001  # late by one overrun, never accumulated


async def test_falling_a_cycle_behind_skips_ahead_and_counts() -> None:
    clock = FakeClock()
    gen = slots(clock, 1.0, 2)
    first = [await anext(gen), await anext(gen)]
    clock.now += 3.2  # the consumer stalls: cycles 1 and 2 pass unsent, cycle 3 has begun
    following = await anext(gen)
    assert [s.cycle for s in first] == [0, 0]
    assert following.cycle == 3
    assert following.skipped == 4
    assert following.lag == pytest.approx(0.7)
    await gen.aclose()
