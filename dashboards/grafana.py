"""A small builder for Grafana dashboard JSON: panels, targets, variables and links as plain
dicts of Grafana's dashboard model (schema version 41), with the defaults Pulse's dashboards
share. Panel ids and grid positions are assigned when the dashboard is assembled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 41
PROMETHEUS = {"type": "prometheus", "uid": "${datasource}"}
LOKI = {"type": "loki", "uid": "${loki}"}
FULL_WIDTH = 24


def prom(
    expr: str,
    legend: str = "",
    *,
    exemplar: bool = False,
    instant: bool = False,
    table: bool = False,
) -> dict[str, Any]:
    target: dict[str, Any] = {"datasource": PROMETHEUS, "expr": expr, "legendFormat": legend}
    if exemplar:
        target["exemplar"] = True
    if instant:
        target.update(instant=True, range=False)
    if table:
        target["format"] = "table"
    return target


def loki(expr: str, legend: str = "") -> dict[str, Any]:
    return {"datasource": LOKI, "expr": expr, "legendFormat": legend, "queryType": "range"}


def thresholds(*steps: tuple[float, str], base: str = "green") -> dict[str, Any]:
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


@dataclass
class Panel:
    kind: str
    title: str
    description: str
    targets: list[dict[str, Any]]
    unit: str | None = None
    width: int = 12
    height: int = 8
    threshold_steps: tuple[tuple[float, str], ...] = ()
    threshold_base: str = "green"
    mappings: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def render(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        defaults: dict[str, Any] = {}
        if self.unit is not None:
            defaults["unit"] = self.unit
        if self.threshold_steps:
            defaults["thresholds"] = thresholds(*self.threshold_steps, base=self.threshold_base)
            if self.kind == "timeseries":
                self.custom.setdefault("thresholdsStyle", {"mode": "dashed"})
        if self.custom:
            defaults["custom"] = self.custom
        if self.mappings:
            defaults["mappings"] = self.mappings
        datasource = self.targets[0]["datasource"] if self.targets else PROMETHEUS
        return {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": datasource,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "targets": [dict(t, refId=chr(ord("A") + i)) for i, t in enumerate(self.targets)],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": self.options,
            **self.extra,
        }


def timeseries(
    title: str, description: str, targets: list[dict[str, Any]], unit: str, **kwargs: Any
) -> Panel:
    kwargs.setdefault(
        "options",
        {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )
    kwargs.setdefault("custom", {"fillOpacity": 10, "lineWidth": 1, "showPoints": "never"})
    return Panel("timeseries", title, description, targets, unit, **kwargs)


def stat(
    title: str, description: str, targets: list[dict[str, Any]], unit: str, **kwargs: Any
) -> Panel:
    kwargs.setdefault("width", 6)
    kwargs.setdefault("height", 4)
    kwargs.setdefault(
        "options",
        {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area",
        },
    )
    return Panel("stat", title, description, targets, unit, **kwargs)


def table(
    title: str, description: str, targets: list[dict[str, Any]], unit: str, **kwargs: Any
) -> Panel:
    kwargs.setdefault("options", {"showHeader": True, "cellHeight": "sm"})
    return Panel("table", title, description, targets, unit, **kwargs)


def logs(title: str, description: str, targets: list[dict[str, Any]], **kwargs: Any) -> Panel:
    kwargs.setdefault("width", FULL_WIDTH)
    kwargs.setdefault("height", 12)
    kwargs.setdefault(
        "options",
        {
            "showTime": True,
            "wrapLogMessage": True,
            "enableLogDetails": True,
            "sortOrder": "Descending",
            "dedupStrategy": "none",
        },
    )
    return Panel("logs", title, description, targets, None, **kwargs)


@dataclass
class Row:
    title: str
    panels: list[Panel]


def datasource_variable(name: str, kind: str, default_uid: str, label: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "datasource",
        "query": kind,
        "current": {"text": default_uid, "value": default_uid},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }


def query_variable(name: str, label: str, query: str, *, multi: bool = True) -> dict[str, Any]:
    """A variable of label values from Prometheus; multi-value with All by default."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": PROMETHEUS,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-values"},
        "refresh": 2,
        "multi": multi,
        "includeAll": multi,
        "current": {"text": "All", "value": "$__all"} if multi else {},
        "sort": 1,
        "hide": 0,
        "regex": "",
        "options": [],
    }


def link_to(uid: str, title: str) -> dict[str, Any]:
    return {
        "type": "link",
        "title": title,
        "url": f"/d/{uid}",
        "icon": "dashboard",
        "keepTime": True,
        "includeVars": False,
        "targetBlank": False,
        "tags": [],
        "asDropdown": False,
        "tooltip": "",
    }


def link_url(title: str, url: str, icon: str = "doc") -> dict[str, Any]:
    return {
        "type": "link",
        "title": title,
        "url": url,
        "icon": icon,
        "keepTime": False,
        "includeVars": False,
        "targetBlank": True,
        "tags": [],
        "asDropdown": False,
        "tooltip": "",
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    rows: list[Row],
    variables: list[dict[str, Any]],
    links: list[dict[str, Any]],
) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    next_id, y = 1, 0
    for row in rows:
        panels.append(
            {
                "id": next_id,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": FULL_WIDTH, "x": 0, "y": y},
                "panels": [],
            }
        )
        next_id, y = next_id + 1, y + 1
        x, row_height = 0, 0
        for panel in row.panels:
            if x + panel.width > FULL_WIDTH:
                x, y, row_height = 0, y + row_height, 0
            panels.append(panel.render(next_id, x, y))
            next_id, x, row_height = next_id + 1, x + panel.width, max(row_height, panel.height)
        y += row_height
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["pulse"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {"list": variables},
        "links": links,
        "panels": panels,
    }
