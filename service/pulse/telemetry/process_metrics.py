"""Process memory and CPU, after the ``process.*`` semantic conventions."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable

from opentelemetry.metrics import CallbackOptions, Meter, Observation

__all__ = ["register_process_metrics"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _memory(_: CallbackOptions) -> Iterable[Observation]:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            yield Observation(int(statm.read().split()[1]) * _PAGE)
    except OSError:  # not Linux: peak RSS is the best the standard library offers
        yield Observation(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def _cpu(_: CallbackOptions) -> Iterable[Observation]:
    times = os.times()
    yield Observation(times.user, {"cpu.mode": "user"})
    yield Observation(times.system, {"cpu.mode": "system"})


def register_process_metrics(meter: Meter) -> None:
    meter.create_observable_gauge(
        "process.memory.usage",
        callbacks=[_memory],
        unit="By",
        description="Resident memory of the process.",
    )
    meter.create_observable_counter(
        "process.cpu.time",
        callbacks=[_cpu],
        unit="s",
        description="CPU time of the process.",
    )
