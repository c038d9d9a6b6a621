"""The logs backends a dashboard can read Pulse's own logs from, each with its query language:
Loki (LogQL, the chart's default) and VictoriaLogs (LogsQL, the local stack's). The logs
dashboard is one definition rendered once per backend; the chart provisions the variant of its
`logs.backend` value.

grafana-foundation-sdk has no builder for the VictoriaLogs plugin's queries, so
`VictoriaLogsQuery` writes the query model of `victoriametrics-logs-datasource` (its
`src/types.ts`: expr, queryType, legendFormat, step)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from grafana_foundation_sdk.builders import loki
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as model

__all__ = [
    "BACKENDS",
    "LOKI",
    "VICTORIALOGS",
    "LogsBackend",
    "VictoriaLogsDataquery",
    "VictoriaLogsQuery",
]


class VictoriaLogsDataquery(cogvariants.Dataquery):
    """One query of the VictoriaLogs datasource plugin."""

    def __init__(
        self,
        datasource: model.DataSourceRef,
        expr: str,
        query_type: str,
        legend_format: str = "",
        step: str | None = None,
        ref_id: str = "",
    ) -> None:
        self.datasource = datasource
        self.expr = expr
        self.query_type = query_type
        self.legend_format = legend_format
        self.step = step
        self.ref_id = ref_id

    def to_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "datasource": self.datasource,
            "expr": self.expr,
            "queryType": self.query_type,
            "refId": self.ref_id,
        }
        if self.legend_format:
            payload["legendFormat"] = self.legend_format
        if self.step is not None:
            payload["step"] = self.step
        return payload


class VictoriaLogsQuery(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builds a `VictoriaLogsDataquery`: `instant` lists log records (/select/logsql/query),
    `statsRange` counts them per step (/select/logsql/stats_query_range)."""

    QUERY_TYPES = ("instant", "stats", "statsRange", "hits")

    def __init__(self, datasource: model.DataSourceRef, expr: str, query_type: str) -> None:
        if query_type not in self.QUERY_TYPES:
            raise ValueError(f"queryType {query_type!r}: one of {self.QUERY_TYPES}")
        self._internal = VictoriaLogsDataquery(datasource, expr, query_type)

    def legend_format(self, legend_format: str) -> Self:
        self._internal.legend_format = legend_format
        return self

    def step(self, step: str) -> Self:
        self._internal.step = step
        return self

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def build(self) -> VictoriaLogsDataquery:
        return self._internal


Query = cogbuilder.Builder[cogvariants.Dataquery]


@dataclass(frozen=True)
class LogsBackend:
    name: str  # the chart's logs.backend value, and the folder of the generated variant
    label: str
    plugin: str  # Grafana datasource type
    uid: str  # UID of the provisioned datasource
    language: str
    # Pulse's own log lines per minute, as a time series named "lines".
    lines_per_minute: Callable[[model.DataSourceRef], Query]
    # Pulse's own log records.
    records: Callable[[model.DataSourceRef], Query]

    @property
    def variable(self) -> model.DataSourceRef:
        """The datasource reference of the dashboard's `$logs` variable."""
        return model.DataSourceRef(type_val=self.plugin, uid="${logs}")


LOKI = LogsBackend(
    name="loki",
    label="Loki",
    plugin="loki",
    uid="loki",
    language="LogQL",
    # Loki maps the resource attribute service.name to the label service_name.
    lines_per_minute=lambda source: (
        loki.Dataquery()
        .datasource(source)
        .expr('sum(count_over_time({service_name="pulse"}[1m]))')
        .legend_format("lines")
        .query_type("range")
    ),
    records=lambda source: (
        loki.Dataquery().datasource(source).expr('{service_name="pulse"}').query_type("range")
    ),
)

VICTORIALOGS = LogsBackend(
    name="victorialogs",
    label="VictoriaLogs",
    plugin="victoriametrics-logs-datasource",
    uid="victorialogs",
    language="LogsQL",
    # VictoriaLogs keeps resource attributes as stream fields with their dots.
    lines_per_minute=lambda source: (
        VictoriaLogsQuery(source, '{service.name="pulse"} | stats count() lines', "statsRange")
        .legend_format("lines")
        .step("1m")
    ),
    records=lambda source: VictoriaLogsQuery(source, '{service.name="pulse"}', "instant"),
)

BACKENDS = (LOKI, VICTORIALOGS)
