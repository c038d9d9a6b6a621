"""SensorService: readings persisted in SQLite, rolling summaries per sensor, watchers."""

from __future__ import annotations

from pulse.config import Settings
from pulse.sensor_service.service import SensorComponent
from pulse.telemetry import Telemetry

__all__ = ["SensorComponent", "build"]


def build(settings: Settings, telemetry: Telemetry) -> SensorComponent:
    return SensorComponent(settings, telemetry)
