"""Pulse's telemetry: providers, instruments, conventions and structured logging."""

from pulse.telemetry.instruments import Instruments
from pulse.telemetry.providers import Telemetry, build_telemetry, build_test_telemetry

__all__ = ["Instruments", "Telemetry", "build_telemetry", "build_test_telemetry"]
