"""Monitor filters: validated, compiled once with RE2, matched per entry."""

from __future__ import annotations

from dataclasses import dataclass

import re2

from pulse.config import MonitorSettings
from pulse.v1 import common_pb2, logs_pb2
from pulse.validation import echo

__all__ = ["CompiledFilter", "InvalidFilter", "compile_filter"]

_SEVERITIES = frozenset(common_pb2.Severity.values())


class InvalidFilter(ValueError):
    """A filter that cannot be applied; the message names the field."""


@dataclass(frozen=True)
class CompiledFilter:
    min_severity: int
    sources: frozenset[str]
    task_ids: frozenset[str]
    pattern: object | None
    attributes: tuple[tuple[str, str], ...]
    backlog: int

    def matches(self, entry: logs_pb2.LogEntry) -> bool:
        if entry.severity < self.min_severity:
            return False
        if self.sources and entry.source not in self.sources:
            return False
        if self.task_ids and entry.task_id not in self.task_ids:
            return False
        if self.attributes:
            attrs = entry.attributes
            for key, value in self.attributes:
                if attrs.get(key) != value:
                    return False
        return self.pattern is None or self.pattern.search(entry.message) is not None


def compile_filter(message: logs_pb2.LogFilter, settings: MonitorSettings) -> CompiledFilter:
    if message.min_severity not in _SEVERITIES:
        allowed = ", ".join(common_pb2.Severity.keys())
        raise InvalidFilter(
            f"min_severity: unknown value {message.min_severity}; allowed: {allowed}"
        )
    limit = settings.max_filter_values
    for name in ("sources", "task_ids"):
        if len(getattr(message, name)) > limit:
            raise InvalidFilter(f"{name}: at most {limit} values")
    if len(message.attributes) > limit:
        raise InvalidFilter(f"attributes: at most {limit} pairs")
    _check_value_bytes(message, settings.max_filter_value_bytes)
    if message.backlog > settings.max_backlog:
        raise InvalidFilter(f"backlog: {message.backlog} is above the limit {settings.max_backlog}")
    return CompiledFilter(
        min_severity=message.min_severity,
        sources=frozenset(message.sources),
        task_ids=frozenset(message.task_ids),
        pattern=_compile_pattern(message.pattern, settings.max_pattern_bytes),
        attributes=tuple(sorted(message.attributes.items())),
        backlog=message.backlog,
    )


def _check_value_bytes(message: logs_pb2.LogFilter, max_bytes: int) -> None:
    for name in ("sources", "task_ids"):
        for i, value in enumerate(getattr(message, name)):
            if len(value.encode()) > max_bytes:
                raise InvalidFilter(f"{name}[{i}]: longer than {max_bytes} bytes")
    for key, value in message.attributes.items():
        if len(key.encode()) > max_bytes or len(value.encode()) > max_bytes:
            raise InvalidFilter(
                f"attributes[{echo(key)}]: keys and values are at most {max_bytes} bytes"
            )


def _compile_pattern(pattern: str, max_bytes: int) -> object | None:
    if not pattern:
        return None
    if len(pattern.encode()) > max_bytes:
        raise InvalidFilter(f"pattern: longer than {max_bytes} bytes")
    options = re2.Options()
    options.max_mem = 8 << 20  # bounds the automaton: no pattern can exhaust memory or time
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise InvalidFilter(f"pattern: not valid RE2 syntax: {reason}") from None
