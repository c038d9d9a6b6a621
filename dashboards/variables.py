"""The template variables of Pulse's dashboards: the datasources (fixed UIDs as provisioned) and
the label values a viewer narrows the panels by."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.models import dashboard as model

from alerts.config import SELECTORS
from dashboards.common import PROMETHEUS

__all__ = ["datasource", "instance", "method", "prometheus", "sensor", "slo_method"]


def datasource(name: str, plugin: str, uid: str, label: str) -> board.DatasourceVariable:
    """Which datasource of plugin type `plugin` the panels read; `uid` is the provisioned one."""
    return (
        board.DatasourceVariable(name)
        .label(label)
        .type(plugin)
        .current(model.VariableOption(text=uid, value=uid))
        .hide(model.VariableHide.DONT_HIDE)
    )


def prometheus() -> board.DatasourceVariable:
    return datasource("datasource", "prometheus", "prometheus", "Prometheus")


def _label_values(name: str, label: str, query: str) -> board.QueryVariable:
    """All values of a label in Prometheus, several selectable, All by default."""
    return (
        board.QueryVariable(name)
        .label(label)
        .datasource(PROMETHEUS)
        .query({"query": query, "refId": f"{name}-values"})
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .current(model.VariableOption(text="All", value="$__all"))
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .hide(model.VariableHide.DONT_HIDE)
    )


def instance() -> board.QueryVariable:
    return _label_values(
        "instance",
        "Instance",
        f"label_values(process_memory_usage_bytes{{{SELECTORS.pulse}}}, instance)",
    )


def method() -> board.QueryVariable:
    return _label_values(
        "method",
        "Method",
        f"label_values(rpc_server_call_duration_seconds_count{{{SELECTORS.pulse}}}, rpc_method)",
    )


def slo_method(record: str) -> board.QueryVariable:
    """Methods that have a recorded availability ratio (the SLO dashboard reads only those)."""
    return _label_values("method", "Method", f"label_values({record}, rpc_method)")


def sensor() -> board.QueryVariable:
    return _label_values(
        "sensor",
        "Sensor",
        f"label_values(pulse_sensor_temperature_celsius{{{SELECTORS.pulse}}}, pulse_sensor_id)",
    )
