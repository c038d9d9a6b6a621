"""The per-batch ingest pipeline: validate, rate-limit, default, redact, truncate.

Pure and synchronous so a batch is applied atomically on the event loop; counters are
accumulated per batch and recorded once.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from pulse.config import IngestSettings
from pulse.log_service.ratelimit import HierarchicalLimiter, Limits
from pulse.log_service.redaction import Redactor
from pulse.v1 import common_pb2, logs_pb2

__all__ = ["BatchResult", "IngestPipeline", "truncate_utf8"]

_VALID_SEVERITIES = frozenset(common_pb2.Severity.values())
_INFO = common_pb2.SEVERITY_INFO


def truncate_utf8(text: str, max_bytes: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes without splitting a character."""
    if len(text) * 4 <= max_bytes:
        return text, False
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text, False
    return raw[:max_bytes].decode("utf-8", "ignore"), True


@dataclass
class BatchResult:
    accepted: list[logs_pb2.LogEntry] = field(default_factory=list)
    rate_limited: int = 0
    rejected: int = 0
    redacted: int = 0
    truncated: int = 0
    scopes: Counter[str] = field(default_factory=Counter)


class IngestPipeline:
    def __init__(self, settings: IngestSettings, limiter: HierarchicalLimiter | None = None):
        self._max_bytes = settings.max_message_bytes
        self._max_attributes = settings.max_attributes
        self.redactor = (
            Redactor.defaults(settings.redaction_patterns)
            if _is_default(settings.redaction_patterns)
            else Redactor(settings.redaction_patterns)
        )
        self.limiter = limiter or HierarchicalLimiter(
            Limits(
                settings.global_rate,
                settings.global_burst,
                settings.source_rate,
                settings.source_burst,
                settings.task_rate,
                settings.task_burst,
                settings.max_tracked_keys,
            )
        )

    def process(self, entries: list[logs_pb2.LogEntry]) -> BatchResult:
        result = BatchResult()
        now_ns = time.time_ns()
        now = self.limiter.now()
        take = self.limiter.take
        for entry in entries:
            if not entry.source or entry.severity not in _VALID_SEVERITIES:
                result.rejected += 1
                continue
            scope = take(entry.source, entry.task_id, now)
            if scope is not None:
                result.rate_limited += 1
                result.scopes[scope] += 1
                continue
            self._normalise(entry, now_ns, result)
            result.accepted.append(entry)
        return result

    def _normalise(self, entry: logs_pb2.LogEntry, now_ns: int, result: BatchResult) -> None:
        if entry.severity == 0:
            entry.severity = _INFO
        if not entry.HasField("time"):
            entry.time.FromNanoseconds(now_ns)
        message, redacted = self.redactor.redact(entry.message)
        if entry.attributes:
            redacted = self._clean_attributes(entry) or redacted
        message, truncated = truncate_utf8(message, self._max_bytes)
        if redacted or truncated:
            entry.message = message
        result.redacted += redacted
        result.truncated += truncated

    def _clean_attributes(self, entry: logs_pb2.LogEntry) -> bool:
        attributes = entry.attributes
        if len(attributes) > self._max_attributes:
            for key in sorted(attributes)[self._max_attributes :]:
                del attributes[key]
        changed = False
        for key, value in list(attributes.items()):
            clean, hit = self.redactor.redact(f"{key}={value}")
            if hit:
                attributes[key] = clean.split("=", 1)[1] if "=" in clean else clean
                changed = True
        return changed


def _is_default(patterns: list[str]) -> bool:
    from pulse.config import DEFAULT_REDACTION_PATTERNS

    return list(patterns) == DEFAULT_REDACTION_PATTERNS
