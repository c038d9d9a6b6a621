"""The per-batch ingest pipeline: validate, rate-limit, default, redact, truncate.

Pure and synchronous so a batch is applied atomically on the event loop; counters are
accumulated per batch and recorded once. Every field a client controls is bounded by bytes
(``IngestSettings``): identifiers beyond their limit reject the entry, free text is truncated,
and an entry with too many attributes is rejected before any per-attribute work.

Each step first asks one question of the whole batch (no entry is invalid, every bucket has
tokens for all, no message holds a redaction hint or is near its limit), answered with a few
passes over its fields at C speed, and goes entry by entry only when the answer is no: the
outcome is the same, and an ordinary batch costs a fraction of the entry-by-entry path.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from pulse.config import IngestSettings
from pulse.log_service.ratelimit import HierarchicalLimiter, Limits
from pulse.log_service.redaction import Redactor
from pulse.v1 import common_pb2, logs_pb2
from pulse.validation import time_problem

__all__ = ["BatchResult", "IngestPipeline", "truncate_utf8"]

_VALID_SEVERITIES = frozenset(common_pb2.Severity.values())
_INFO = common_pb2.SEVERITY_INFO
# W3C trace context: 32 and 16 hex digits; anything longer is not an id.
_TRACE_ID_CHARS, _SPAN_ID_CHARS = 32, 16


def truncate_utf8(text: str, max_bytes: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes without splitting a character."""
    if len(text) * 4 <= max_bytes:
        return text, False
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text, False
    return raw[:max_bytes].decode("utf-8", "ignore"), True


def _longer(text: str, max_bytes: int) -> bool:
    """Whether ``text`` has more than ``max_bytes`` UTF-8 bytes (cheaply, for short text)."""
    return len(text) > max_bytes or (len(text) * 4 > max_bytes and len(text.encode()) > max_bytes)


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
        self._s = settings
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
                settings.max_tracked_key_bytes,
            )
        )

    def process(self, entries: list[logs_pb2.LogEntry]) -> BatchResult:
        result = BatchResult()
        now_ns = time.time_ns()
        now = self.limiter.now()
        sources = [entry.source for entry in entries]
        tasks = [entry.task_id for entry in entries]
        if self._all_valid(entries, sources, tasks) and self.limiter.take_all(sources, tasks, now):
            self._normalise_all(entries, now_ns, result)
            result.accepted = entries
            return result
        take = self.limiter.take
        for entry in entries:
            if self.problem(entry) is not None:
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

    def _all_valid(
        self, entries: list[logs_pb2.LogEntry], sources: list[str], tasks: list[str]
    ) -> bool:
        """Whether ``problem`` is None for every entry, when that is quick to see (False: look
        at each)."""
        s = self._s
        if not entries or not all(sources):
            return False
        if not _VALID_SEVERITIES.issuperset([entry.severity for entry in entries]):
            return False
        # Characters * 4 bound UTF-8 bytes: short identifiers need no encoding.
        if max(map(len, sources)) * 4 > s.max_source_bytes:
            return False
        if max(map(len, tasks)) * 4 > s.max_task_id_bytes:
            return False
        if max(map(len, [entry.trace_id for entry in entries])) > _TRACE_ID_CHARS:
            return False
        if max(map(len, [entry.span_id for entry in entries])) > _SPAN_ID_CHARS:
            return False
        if any(entry.attributes for entry in entries):
            return False
        return not any(entry.HasField("time") for entry in entries)

    def _normalise_all(self, entries: list[logs_pb2.LogEntry], now_ns: int, result: BatchResult):
        """``_normalise`` for a batch of valid entries without attributes or times."""
        seconds, nanos = divmod(now_ns, 1_000_000_000)
        for entry in entries:
            if not entry.severity:
                entry.severity = _INFO
            stamp = entry.time
            stamp.seconds = seconds
            stamp.nanos = nanos
        messages = [entry.message for entry in entries]
        if max(map(len, messages)) * 4 <= self._s.max_message_bytes and not self.redactor.may_match(
            messages
        ):
            return
        for entry, message in zip(entries, messages, strict=True):
            clean, redacted = self.redactor.redact(message)
            clean, truncated = truncate_utf8(clean, self._s.max_message_bytes)
            if redacted or truncated:
                entry.message = clean
            result.redacted += redacted
            result.truncated += truncated

    def problem(self, entry: logs_pb2.LogEntry) -> str | None:
        """Why ``entry`` is rejected, or None."""
        s = self._s
        if not entry.source:
            return "source is required"
        if entry.severity not in _VALID_SEVERITIES:
            return f"severity {entry.severity} is not a Severity"
        if _longer(entry.source, s.max_source_bytes):
            return f"source is longer than {s.max_source_bytes} bytes"
        if _longer(entry.task_id, s.max_task_id_bytes):
            return f"task_id is longer than {s.max_task_id_bytes} bytes"
        if len(entry.trace_id) > _TRACE_ID_CHARS or len(entry.span_id) > _SPAN_ID_CHARS:
            return "trace_id and span_id are at most 32 and 16 hex digits"
        attributes = entry.attributes
        if len(attributes) > s.max_attributes:  # before any per-attribute work
            return f"more than {s.max_attributes} attributes"
        if attributes and any(_longer(key, s.max_attribute_key_bytes) for key in attributes):
            return f"an attribute key is longer than {s.max_attribute_key_bytes} bytes"
        if entry.HasField("time"):
            return time_problem(entry.time)
        return None

    def _normalise(self, entry: logs_pb2.LogEntry, now_ns: int, result: BatchResult) -> None:
        if entry.severity == 0:
            entry.severity = _INFO
        if not entry.HasField("time"):
            entry.time.FromNanoseconds(now_ns)
        message, redacted = self.redactor.redact(entry.message)
        truncated_attribute = False
        if entry.attributes:
            changed, truncated_attribute = self._clean_attributes(entry)
            redacted = changed or redacted
        message, truncated = truncate_utf8(message, self._s.max_message_bytes)
        if redacted or truncated:
            entry.message = message
        result.redacted += redacted
        result.truncated += truncated or truncated_attribute

    def _clean_attributes(self, entry: logs_pb2.LogEntry) -> tuple[bool, bool]:
        """(redacted, truncated) over the entry's attribute values."""
        attributes = entry.attributes
        limit = self._s.max_attribute_value_bytes
        redacted = truncated = False
        for key, value in list(attributes.items()):
            clean, hit = self.redactor.redact(f"{key}={value}")
            if hit:
                value = clean.split("=", 1)[1] if "=" in clean else clean
                redacted = True
            value, cut = truncate_utf8(value, limit)
            if hit or cut:
                attributes[key] = value
                truncated = truncated or cut
        return redacted, truncated


def _is_default(patterns: list[str]) -> bool:
    from pulse.config import DEFAULT_REDACTION_PATTERNS

    return list(patterns) == DEFAULT_REDACTION_PATTERNS
