"""Pulse / Sensors: rolling temperature summaries per sensor and the readings behind them."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as model

from alerts.config import DASHBOARDS, Config
from dashboards import variables
from dashboards.common import Query, Row, assemble, prom, table, timeseries, transformation
from dashboards.queries import PULSE, RATE, ZERO

__all__ = ["dashboard"]

UID = DASHBOARDS["sensors"]
SENSOR = f'{PULSE}, pulse_sensor_id=~"$sensor"'
READINGS = "pulse_sensor_readings_total"


def _temperature(statistic: str) -> Query:
    return prom(
        f'pulse_sensor_temperature_celsius{{{SENSOR}, pulse_sensor_statistic="{statistic}"}}',
        f"{{{{pulse_sensor_id}}}} {statistic}",
    )


def _share(outcome: str) -> Query:
    return prom(
        f'(sum(rate({READINGS}{{{PULSE}, pulse_sensor_outcome="{outcome}"}}{RATE})){ZERO})'
        f" / sum(rate({READINGS}{{{PULSE}}}{RATE}))",
        outcome,
    )


def _temperatures() -> Row:
    return Row(
        "Temperature",
        [
            timeseries(
                "Temperature per sensor (min, avg, max)",
                "The rolling summary of each sensor's last readings: minimum, average and maximum.",
                [_temperature("min"), _temperature("avg"), _temperature("max")],
                "celsius",
                width=24,
            ),
            table(
                "Latest summary per sensor",
                "The current minimum, average and maximum of each sensor.",
                [prom(f"pulse_sensor_temperature_celsius{{{SENSOR}}}", instant=True)],
                "celsius",
                transformations=[
                    transformation(
                        "groupingToMatrix",
                        {
                            "columnField": "pulse_sensor_statistic",
                            "rowField": "pulse_sensor_id",
                            "valueField": "Value",
                        },
                    )
                ],
            ),
        ],
    )


def _readings(config: Config) -> Row:
    limit = config.thresholds.sensor_rejected_ratio
    return Row(
        "Readings",
        [
            timeseries(
                "Readings by outcome",
                "Readings per second: accepted, duplicate (a retried reading, kept once) and "
                "rejected.",
                [
                    prom(
                        f"sum by (pulse_sensor_outcome) (rate({READINGS}{{{PULSE}}}{RATE}))",
                        "{{pulse_sensor_outcome}}",
                    )
                ],
                "cps",
            ),
            timeseries(
                "Rejected and duplicate share",
                f"Share of readings rejected (PulseSensorReadingsRejected fires above "
                f"{limit * 100:g}%) and duplicates.",
                [_share("rejected"), _share("duplicate")],
                "percentunit",
                thresholds=((limit, "red"),),
            ),
            timeseries(
                "Summary watchers",
                "WatchSummaries calls open right now.",
                [prom(f"sum(pulse_sensor_watchers{{{PULSE}}})", "watchers")],
                "short",
            ),
        ],
    )


def dashboard(config: Config) -> model.Dashboard:
    return assemble(
        UID,
        "Rolling temperature summaries per sensor and the readings behind them.",
        [_temperatures(), _readings(config)],
        [variables.prometheus(), variables.instance(), variables.sensor()],
        ("PulseSensorReadingsRejected",),
    )
