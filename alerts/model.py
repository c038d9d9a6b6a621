"""Prometheus rule files as Python values, and their YAML.

An area (alerts/areas/*.py) returns a `RuleFile`; `render` writes it as the YAML Prometheus,
promtool, the local stack and the chart load. Every alert gets its `runbook_url` from
`annotations()`, never from the area that defines it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from alerts.config import runbook_url

__all__ = ["Alert", "Group", "Record", "RuleFile", "annotations", "pct", "render"]


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    severity: str
    summary: str
    description: str
    # uid of the dashboard to open; None for alerts about the alerting path itself.
    dashboard: str | None = None
    for_: str | None = None
    # The `service` label; None where the expression sets it (TargetDown) or none applies.
    service: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    name: str
    expr: str


@dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[Alert | Record, ...]


@dataclass(frozen=True)
class RuleFile:
    name: str  # file name under alerts/rules/
    about: str  # what the file holds, written as its header comment
    groups: tuple[Group, ...]


class _Block(str):
    """A PromQL expression, written as a YAML literal block."""


def _block(dumper: yaml.SafeDumper, value: _Block) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Block, _block)


def pct(ratio: float) -> str:
    """A threshold ratio as the descriptions print it: 0.01 -> 1%."""
    return f"{ratio * 100:g}%"


def annotations(alert: Alert) -> dict[str, str]:
    """The annotations of `alert`: its texts, the runbook link every alert carries, and the
    dashboard to open."""
    result = {
        "summary": alert.summary,
        "description": alert.description,
        "runbook_url": runbook_url(alert.name),
    }
    if alert.dashboard:
        result["dashboard"] = alert.dashboard
    return result


def _expr(text: str) -> _Block:
    return _Block(text.strip("\n") + "\n")


def _rule(rule: Alert | Record) -> dict[str, object]:
    if isinstance(rule, Record):
        return {"record": rule.name, "expr": _expr(rule.expr)}
    document: dict[str, object] = {"alert": rule.name, "expr": _expr(rule.expr)}
    if rule.for_:
        document["for"] = rule.for_
    labels = {"severity": rule.severity}
    if rule.service:
        labels["service"] = rule.service
    document["labels"] = labels | rule.labels
    document["annotations"] = annotations(rule)
    return document


def _comment(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return "".join(f"# {line}\n" if line else "#\n" for line in lines)


def render(rules: RuleFile, source: str) -> str:
    """The YAML of `rules`, headed by what it holds and where it is generated from."""
    document = {
        "groups": [
            {"name": group.name, "rules": [_rule(rule) for rule in group.rules]}
            for group in rules.groups
        ]
    }
    header = f"# Generated from {source} by `make alerts`: edit that, not this file.\n#\n"
    # No line folding: an annotation stays one line, as promtool tests and people read it.
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=2**16, allow_unicode=True)
    return header + _comment(rules.about) + body
