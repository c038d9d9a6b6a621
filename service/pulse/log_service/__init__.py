"""LogService: ingest from agents (client streaming) and live monitoring (bidirectional)."""

from __future__ import annotations

from pulse.config import Settings
from pulse.log_service.service import LogComponent
from pulse.telemetry import Telemetry

__all__ = ["LogComponent", "build"]


def build(settings: Settings, telemetry: Telemetry) -> LogComponent:
    return LogComponent(settings, telemetry)
