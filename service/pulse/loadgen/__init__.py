"""The load generator: every kind of Pulse client at once, with client-side telemetry."""

from pulse.loadgen.runner import LoadConfig, LoadGenerator

__all__ = ["LoadConfig", "LoadGenerator"]
