"""Realistic shapes of simulated host metrics, deterministic in (seed, source, time).

Each shape is a smooth, seeded function of time plus hashed "events" (bursts, spikes, GC
drops) so two streams asking for the same source at the same time see the same values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SIGNALS", "Signal", "unit_hash"]

_MASK = (1 << 64) - 1


def unit_hash(*parts: int) -> float:
    """A uniform value in [0, 1) from integers (splitmix64): cheap, stateless, repeatable."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = (x ^ (part & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK
        x ^= x >> 31
    return x / 2**64


def _noise(seed: int, source: int, kind: int, t: float, scale: float) -> float:
    """Roughly normal noise (sum of three uniforms), fixed per 100 ms slot."""
    slot = int(t * 10)
    total = sum(unit_hash(seed, source, kind, slot, i) for i in range(3))
    return (total - 1.5) * 2 * scale


def _clamp(value: float, low: float, high: float = math.inf) -> float:
    return min(max(value, low), high)


def _cpu(seed: int, source: int, t: float) -> float:
    phase = unit_hash(seed, source, 1) * 2 * math.pi
    wave = 45 + 25 * math.sin(2 * math.pi * t / 300 + phase) + 8 * math.sin(2 * math.pi * t / 37)
    return _clamp(wave + _noise(seed, source, 1, t, 4), 0, 100)


def _memory(seed: int, source: int, t: float) -> float:
    # Share of memory in use: creeps up for a GC period, then drops back (a sawtooth).
    period = 240 + 120 * unit_hash(seed, source, 2)
    offset = unit_hash(seed, source, 2, 1) * period
    growth = ((t + offset) % period) / period
    return _clamp(30 + 50 * growth + _noise(seed, source, 2, t, 0.5), 0, 100)


def _disk(seed: int, source: int, t: float) -> float:
    window = int(t // 20)
    bursting = unit_hash(seed, source, 3, window) < 0.2
    base = 4 + 2 * unit_hash(seed, source, 3)
    burst = 80 + 120 * unit_hash(seed, source, 3, window, 1) if bursting else 0
    return _clamp(base + burst + _noise(seed, source, 3, t, 1), 0)


def _network(seed: int, source: int, t: float) -> float:
    spike = unit_hash(seed, source, 4, int(t)) < 0.03
    base = 12 + 4 * math.sin(2 * math.pi * t / 600 + unit_hash(seed, source, 4) * 6)
    return _clamp(base + (60 if spike else 0) + _noise(seed, source, 4, t, 1.5), 0)


def _requests(seed: int, source: int, t: float) -> float:
    # A slow, daily-like swing compressed into an hour.
    phase = unit_hash(seed, source, 5) * 2 * math.pi
    swing = 250 + 180 * math.sin(2 * math.pi * t / 3600 + phase)
    return _clamp(swing + _noise(seed, source, 5, t, 15), 0)


def _errors(seed: int, source: int, t: float) -> float:
    window = int(t // 15)
    spike = unit_hash(seed, source, 6, window) < 0.05
    level = 4 + 12 * unit_hash(seed, source, 6, window, 1) if spike else 0.4
    return _clamp(level + _noise(seed, source, 6, t, 0.15), 0, 100)


def _latency(seed: int, source: int, t: float) -> float:
    mean = 80 + 40 * unit_hash(seed, source, 7)
    return _clamp(mean + _noise(seed, source, 7, t, 18), 1)


@dataclass(frozen=True)
class Signal:
    name: str
    unit: str
    description: str
    value: Callable[[int, int, float], float]
    low: float
    high: float = math.inf


SIGNALS: dict[str, Signal] = {
    s.name: s
    for s in (
        Signal("cpu_usage", "percent", "CPU busy time; a slow wave with noise.", _cpu, 0, 100),
        Signal(
            "memory_usage",
            "percent",
            "Share of the host's memory in use; creeps up, drops at each GC.",
            _memory,
            0,
            100,
        ),
        Signal("disk_io", "MB/s", "Disk throughput; a low baseline with bursts.", _disk, 0),
        Signal("network_io", "MB/s", "Network throughput; a baseline with spikes.", _network, 0),
        Signal(
            "request_rate", "requests/s", "Requests served; a slow daily-like swing.", _requests, 0
        ),
        Signal(
            "error_rate", "percent", "Share of failed requests; low with spikes.", _errors, 0, 100
        ),
        Signal("latency", "ms", "Request latency; roughly normal around its mean.", _latency, 1),
    )
}
