"""Monitor filters: validated, compiled once with RE2, matched per batch or per entry.

A batch is matched through a ``BatchIndex``: positions by source, by task id and by severity,
built once per batch and only as far as some filter asks. A filter starts from the positions its
sources, task ids and minimum severity select and only looks at those entries for its
attributes and pattern, so its work grows with the entries it matches, not with the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import re2

from pulse.config import MonitorSettings
from pulse.v1 import common_pb2, logs_pb2
from pulse.validation import echo

__all__ = ["ALL", "BatchIndex", "CompiledFilter", "InvalidFilter", "compile_filter"]

_SEVERITIES = frozenset(common_pb2.Severity.values())
# select(): every entry of the batch.
ALL: Final = object()


class BatchIndex:
    """One batch's entries with their positions by source, task id and severity, each built on
    first use and then shared by every filter matched against the batch."""

    def __init__(self, entries: Sequence[logs_pb2.LogEntry]) -> None:
        self.entries = entries
        self._severities: list[int] | None = None
        self._by: dict[str, dict[object, list[int]]] = {}

    def severities(self) -> list[int]:
        if self._severities is None:
            self._severities = [entry.severity for entry in self.entries]
        return self._severities

    def positions(self, name: str) -> dict[object, list[int]]:
        """Positions by the value of ``name``: ``source``, ``task_id`` or ``severity``."""
        index = self._by.get(name)
        if index is None:
            index = {}
            values = (
                self.severities()
                if name == "severity"
                else [getattr(entry, name) for entry in self.entries]
            )
            for i, value in enumerate(values):
                index.setdefault(value, []).append(i)
            self._by[name] = index
        return index


class InvalidFilter(ValueError):
    """A filter that cannot be applied; the message names the field."""


@dataclass(frozen=True, eq=False)
class CompiledFilter:
    """Equal, and hashed alike, when they select the same entries (``key``)."""

    min_severity: int
    sources: frozenset[str]
    task_ids: frozenset[str]
    pattern: object | None
    attributes: tuple[tuple[str, str], ...]
    backlog: int
    key: tuple = field(default=(), repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompiledFilter) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def select(self, index: BatchIndex) -> object:
        """The positions of the batch's matching entries in order, or ALL."""
        candidates: object = ALL
        if self.sources:
            candidates = _union(index.positions("source"), self.sources)
        if self.task_ids:
            if candidates is ALL:
                candidates = _union(index.positions("task_id"), self.task_ids)
            else:
                by_task = index.positions("task_id")
                wanted = {i for task in self.task_ids for i in by_task.get(task, ())}
                candidates = [i for i in candidates if i in wanted]  # type: ignore[attr-defined]
        if self.min_severity:
            severities = index.severities()
            if candidates is ALL:
                if min(severities) < self.min_severity:
                    by_severity = index.positions("severity")
                    levels = [s for s in by_severity if s >= self.min_severity]  # type: ignore[operator]
                    candidates = _union(by_severity, levels)
            else:
                floor = self.min_severity
                candidates = [i for i in candidates if severities[i] >= floor]  # type: ignore[attr-defined]
        if not self.attributes and self.pattern is None:
            return candidates
        entries = index.entries
        positions = range(len(entries)) if candidates is ALL else candidates
        chosen = [i for i in positions if self._matches_rest(entries[i])]  # type: ignore[attr-defined]
        return ALL if len(chosen) == len(entries) else chosen

    def _matches_rest(self, entry: logs_pb2.LogEntry) -> bool:
        if self.attributes:
            attrs = entry.attributes
            for key, value in self.attributes:
                if attrs.get(key) != value:
                    return False
        return self.pattern is None or self.pattern.search(entry.message) is not None

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
    sources, task_ids = frozenset(message.sources), frozenset(message.task_ids)
    attributes = tuple(sorted(message.attributes.items()))
    # What selects entries; the backlog only says how many to replay once.
    key = (message.min_severity, sources, task_ids, message.pattern, attributes)
    return CompiledFilter(
        min_severity=message.min_severity,
        sources=sources,
        task_ids=task_ids,
        pattern=_compile_pattern(message.pattern, settings.max_pattern_bytes),
        attributes=attributes,
        backlog=message.backlog,
        key=key,
    )


def _union(index: dict[object, list[int]], values) -> list[int]:
    """The positions of every value, in batch order."""
    lists = [index[v] for v in values if v in index]
    if len(lists) == 1:
        return lists[0]
    return sorted(i for positions in lists for i in positions)


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
