"""What Pulse's dashboards share, on grafana-foundation-sdk's builders: the panel kinds with
their defaults, thresholds, links, and the assembly of rows into a dashboard. Panels are laid
out by the SDK in the order they are added; ids are numbered once the dashboard is built."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.builders import logs as logs_panel
from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.builders import stat as stat_panel
from grafana_foundation_sdk.builders import table as table_panel
from grafana_foundation_sdk.builders import timeseries as timeseries_panel
from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    ReduceDataOptions,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import prometheus as prometheus_model

from alerts.config import DASHBOARDS, runbook_url

__all__ = [
    "PROMETHEUS",
    "TITLES",
    "Query",
    "Row",
    "assemble",
    "logs",
    "prom",
    "stat",
    "table",
    "timeseries",
    "to_json",
    "transformation",
]

FULL_WIDTH = 24
PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
TITLES = {
    DASHBOARDS["overview"]: "Pulse / Service overview",
    DASHBOARDS["streams"]: "Pulse / Streams",
    DASHBOARDS["logs"]: "Pulse / Log pipeline",
    DASHBOARDS["sensors"]: "Pulse / Sensors",
    DASHBOARDS["slo"]: "Pulse / SLOs",
    DASHBOARDS["pipeline"]: "Pulse / Telemetry pipeline",
    DASHBOARDS["shared"]: "Pulse / Shared state",
}

Query = cogbuilder.Builder[cogvariants.Dataquery]
Threshold = tuple[float, str]


def prom(
    expr: str, legend: str = "", *, exemplar: bool = False, instant: bool = False
) -> prometheus.Dataquery:
    """A Prometheus query on the dashboard's `$datasource`; instant ones are read as tables."""
    query = prometheus.Dataquery().datasource(PROMETHEUS).expr(expr).legend_format(legend)
    if exemplar:
        query = query.exemplar(True)
    if instant:
        query = query.instant().format(prometheus_model.PromQueryFormat.TABLE)
    return query


def _thresholds(steps: Sequence[Threshold], base: str) -> board.ThresholdsConfig:
    return (
        board.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps(
            [model.Threshold(value=None, color=base)]
            + [model.Threshold(value=value, color=color) for value, color in steps]
        )
    )


def _common(
    panel: Any,
    title: str,
    description: str,
    targets: Sequence[Query],
    *,
    width: int,
    height: int,
    unit: str | None = None,
    thresholds: Sequence[Threshold] = (),
    threshold_base: str = "green",
) -> Any:
    panel = panel.title(title).description(description).span(width).height(height)
    datasource = None
    for index, target in enumerate(targets):
        built = target.build()
        datasource = datasource or getattr(built, "datasource", None)
        panel = panel.with_target(target.ref_id(chr(ord("A") + index)))
    panel = panel.datasource(datasource or PROMETHEUS)
    if unit is not None:
        panel = panel.unit(unit)
    if thresholds:
        panel = panel.thresholds(_thresholds(thresholds, threshold_base))
    return panel


def timeseries(
    title: str,
    description: str,
    targets: Sequence[Query],
    unit: str,
    *,
    width: int = 12,
    height: int = 8,
    thresholds: Sequence[Threshold] = (),
) -> timeseries_panel.Panel:
    """A time series with a table legend (mean, max); thresholds are drawn dashed."""
    panel = _common(
        timeseries_panel.Panel(),
        title,
        description,
        targets,
        width=width,
        height=height,
        unit=unit,
        thresholds=thresholds,
    )
    panel = (
        panel.legend(
            VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs(["mean", "max"])
        )
        .tooltip(
            VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
        .fill_opacity(10)
        .line_width(1)
        .show_points(common.VisibilityMode.NEVER)
    )
    if thresholds:
        panel = panel.thresholds_style(
            GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    return panel


def stat(
    title: str,
    description: str,
    targets: Sequence[Query],
    unit: str,
    *,
    width: int = 6,
    height: int = 4,
    thresholds: Sequence[Threshold] = (),
    threshold_base: str = "green",
    mappings: Sequence[model.ValueMap] = (),
    with_names: bool = False,
) -> stat_panel.Panel:
    """The last value as a coloured number with its sparkline; `with_names` shows the series
    name beside each value."""
    panel = _common(
        stat_panel.Panel(),
        title,
        description,
        targets,
        width=width,
        height=height,
        unit=unit,
        thresholds=thresholds,
        threshold_base=threshold_base,
    )
    panel = (
        panel.reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
    )
    if with_names:
        panel = panel.text_mode(common.BigValueTextMode.VALUE_AND_NAME)
    if mappings:
        panel = panel.mappings(list(mappings))
    return panel


def table(
    title: str,
    description: str,
    targets: Sequence[Query],
    unit: str,
    *,
    transformations: Sequence[model.DataTransformerConfig],
    width: int = FULL_WIDTH,
    height: int = 8,
) -> table_panel.Panel:
    panel = _common(
        table_panel.Panel(), title, description, targets, width=width, height=height, unit=unit
    )
    panel = panel.show_header(True).cell_height(common.TableCellHeight.SM)
    for step in transformations:
        panel = panel.with_transformation(step)
    return panel


def logs(title: str, description: str, targets: Sequence[Query]) -> logs_panel.Panel:
    """Log lines, newest first, with their details (where the trace link lives)."""
    panel = _common(logs_panel.Panel(), title, description, targets, width=FULL_WIDTH, height=12)
    return (
        panel.show_time(True)
        .wrap_log_message(True)
        .enable_log_details(True)
        .sort_order(common.LogsSortOrder.DESCENDING)
        .dedup_strategy(common.LogsDedupStrategy.NONE)
    )


def transformation(kind: str, options: dict[str, Any]) -> model.DataTransformerConfig:
    return model.DataTransformerConfig(id_val=kind, options=options)


@dataclass(frozen=True)
class Row:
    title: str
    panels: Sequence[Any]


def _link_to(uid: str) -> board.DashboardLink:
    return (
        board.DashboardLink(TITLES[uid])
        .type(model.DashboardLinkType.LINK)
        .url(f"/d/{uid}")
        .icon("dashboard")
        .keep_time(True)
    )


def _runbook(alert: str) -> board.DashboardLink:
    return (
        board.DashboardLink(f"Runbook: {alert}")
        .type(model.DashboardLinkType.LINK)
        .url(runbook_url(alert))
        .icon("doc")
        .target_blank(True)
    )


def _annotations() -> board.AnnotationQuery:
    """Grafana's built-in annotations and alerts, as every new dashboard has them."""
    return (
        board.AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(model.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
        .built_in(1)
    )


def assemble(
    uid: str,
    description: str,
    rows: Sequence[Row],
    variables: Sequence[cogbuilder.Builder[model.VariableModel]],
    runbooks: Sequence[str],
) -> model.Dashboard:
    """The dashboard `uid`: its rows in order, links to every other dashboard and to the
    runbooks of the alerts it helps with."""
    builder = (
        board.Dashboard(TITLES[uid])
        .uid(uid)
        .description(description)
        .tags(["pulse"])
        .timezone("browser")
        .readonly()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-1h", "now")
        .version(1)
        .annotation(_annotations())
        .variables(list(variables))
        .links(
            [_link_to(other) for other in TITLES if other != uid] + [_runbook(a) for a in runbooks]
        )
    )
    for row in rows:
        builder = builder.with_row(board.Row(row.title))
        for panel in row.panels:
            builder = builder.with_panel(panel)
    built = builder.build()
    for number, panel in enumerate(built.panels or [], start=1):
        panel.id_val = number
    return built


def to_json(dashboard: model.Dashboard) -> str:
    return json.dumps(dashboard, cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"
