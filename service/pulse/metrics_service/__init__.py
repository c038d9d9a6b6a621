"""StreamMetrics: simulated host metrics of a fleet, streamed on an absolute schedule."""

from __future__ import annotations

from pulse.config import Settings
from pulse.metrics_service.service import MetricsComponent
from pulse.telemetry import Telemetry

__all__ = ["MetricsComponent", "build"]


def build(settings: Settings, telemetry: Telemetry) -> MetricsComponent:
    return MetricsComponent(settings, telemetry)
