"""The ingest pipeline pieces without a server: redaction, truncation, rate limits, dedup,
filters and the subscriber queue."""

from __future__ import annotations

import pytest

from pulse.config import DEFAULT_REDACTION_PATTERNS, MonitorSettings
from pulse.log_service.buffer import ENTRY_OVERHEAD, LogBuffer, Subscriber, encode_response
from pulse.log_service.dedup import BatchDeduplicator
from pulse.log_service.filters import InvalidFilter, compile_filter
from pulse.log_service.ingest import truncate_utf8
from pulse.log_service.ratelimit import HierarchicalLimiter, Limits
from pulse.log_service.redaction import Redactor
from pulse.v1 import common_pb2, logs_pb2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("login password=hunter2 ok", "login password=[REDACTED] ok"),
        ('{"secret": "s3cr3t", "user": "bob"}', '{"secret": "[REDACTED]", "user": "bob"}'),
        ("token: abc.def", "token: [REDACTED]"),
        ("api_key=XYZ123&x=1", "api_key=[REDACTED]&x=1"),
        ("API-KEY: k", "API-KEY: [REDACTED]"),
        ("Authorization: Bearer eyJhbGciOi.x.y", "Authorization: [REDACTED]"),
        ("sent Bearer eyJabc.def to upstream", "sent Bearer [REDACTED] to upstream"),
        ("pwd=1 passwd=2", "pwd=[REDACTED] passwd=[REDACTED]"),
    ],
)
def test_default_patterns_redact_secrets(text: str, expected: str) -> None:
    assert Redactor.defaults(DEFAULT_REDACTION_PATTERNS).redact(text) == (expected, True)


@pytest.mark.parametrize("text", ["tokens are counted per user", "the key insight", "plain"])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Redactor.defaults(DEFAULT_REDACTION_PATTERNS).redact(text) == (text, False)


def test_custom_pattern_without_group_replaces_whole_match() -> None:
    redactor = Redactor([r"\d{4}-\d{4}-\d{4}-\d{4}"])
    assert redactor.redact("card 1234-5678-9012-3456 used") == ("card [REDACTED] used", True)


def test_invalid_pattern_is_named() -> None:
    with pytest.raises(ValueError, match=r"redaction_patterns\[1\]"):
        Redactor(["ok", "(unclosed"])


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("abcdef", 4, "abcd"),
        ("héllo", 2, "h"),  # é is two bytes: never split
        ("日本語", 7, "日本"),  # three bytes each
        ("🙂🙂", 5, "🙂"),
        ("short", 100, "short"),
    ],
)
def test_truncation_never_splits_a_character(text: str, limit: int, expected: str) -> None:
    cut, truncated = truncate_utf8(text, limit)
    assert cut == expected
    assert truncated == (text != expected)
    assert len(cut.encode()) <= limit


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _limiter(clock: Clock, **kw: float) -> HierarchicalLimiter:
    values = dict(
        global_rate=100,
        global_burst=100,
        source_rate=10,
        source_burst=3,
        task_rate=10,
        task_burst=2,
        max_tracked_keys=100,
        max_tracked_key_bytes=1 << 20,
    )
    values.update(kw)
    return HierarchicalLimiter(Limits(**values), clock)


def test_each_level_limits_and_names_its_scope() -> None:
    clock = Clock()
    limiter = _limiter(clock)
    assert [limiter.take("a", "t1", 0) for _ in range(3)] == [None, None, "task"]
    assert limiter.take("a", "t2", 0) is None  # source a has one token left
    assert limiter.take("a", "t3", 0) == "source"
    g = _limiter(clock, global_burst=1)
    assert g.take("x", "", 0) is None
    assert g.take("y", "", 0) == "global"


def test_a_refused_entry_takes_no_token_from_other_levels() -> None:
    clock = Clock()
    limiter = _limiter(clock, source_burst=5, task_burst=1)
    assert limiter.take("a", "t1", 0) is None
    for _ in range(10):
        assert limiter.take("a", "t1", 0) == "task"
    # The source bucket was not drained by the refusals.
    assert [limiter.take("a", f"other-{i}", 0) for i in range(4)] == [None] * 4


def test_buckets_refill_at_their_rate() -> None:
    clock = Clock()
    limiter = _limiter(clock, source_burst=1, task_burst=100)
    assert limiter.take("a", "", 0.0) is None
    assert limiter.take("a", "", 0.0) == "source"
    assert limiter.take("a", "", 0.1) is None  # 10/s: one token after 100 ms


def test_dedup_window_expires() -> None:
    clock = Clock()
    dedup = BatchDeduplicator(10, 100, 1 << 20, clock)
    dedup.record("b1")
    assert dedup.seen("b1")
    assert not dedup.seen("")
    clock.t = 10.5
    assert not dedup.seen("b1")


def _entry(message: str = "m", severity: int = common_pb2.SEVERITY_INFO, **kw: str):
    return logs_pb2.LogEntry(
        message=message,
        severity=severity,
        source=kw.get("source", "s"),
        task_id=kw.get("task_id", ""),
    )


def test_filter_validation_names_the_field() -> None:
    settings = MonitorSettings(max_backlog=5, max_pattern_bytes=10, max_filter_values=2)
    cases = {
        "pattern: not valid RE2": logs_pb2.LogFilter(pattern="(a"),
        "pattern: longer than 10 bytes": logs_pb2.LogFilter(pattern="a" * 11),
        "backlog: 6 is above the limit 5": logs_pb2.LogFilter(backlog=6),
        "sources: at most 2": logs_pb2.LogFilter(sources=["a", "b", "c"]),
        "min_severity: unknown value 3": logs_pb2.LogFilter(min_severity=3),
    }
    for message, flt in cases.items():
        with pytest.raises(InvalidFilter, match=message.replace("(", r"\(")):
            compile_filter(flt, settings)


def test_filter_matches_every_field() -> None:
    flt = compile_filter(
        logs_pb2.LogFilter(
            min_severity=common_pb2.SEVERITY_WARN,
            sources=["a"],
            task_ids=["t"],
            pattern="time(out)?",
            attributes={"region": "eu"},
        ),
        MonitorSettings(),
    )
    good = _entry("upstream timeout", common_pb2.SEVERITY_ERROR, source="a", task_id="t")
    good.attributes["region"] = "eu"
    assert flt.matches(good)
    for change in ("severity", "source", "task_id", "message", "attributes"):
        bad = logs_pb2.LogEntry()
        bad.CopyFrom(good)
        if change == "severity":
            bad.severity = common_pb2.SEVERITY_INFO
        elif change == "attributes":
            bad.attributes["region"] = "us"
        else:
            setattr(bad, change, "zzz")
        assert not flt.matches(bad), change


def test_backlog_replays_the_newest_matching_entries_in_order() -> None:
    buffer = LogBuffer(capacity=5, max_bytes=1 << 20)
    buffer.append([_entry(f"m{i}", source="a" if i % 2 else "b") for i in range(8)])
    flt = compile_filter(logs_pb2.LogFilter(sources=["a"], backlog=2), MonitorSettings())
    assert [e.message for e in _entries(buffer.backlog(flt, 2, 100)[0])] == ["m5", "m7"]
    found, examined = buffer.backlog(flt, 10, 100)
    assert ([e.sequence for e in _entries(found)], examined) == ([4, 6, 8], 5)  # ring keeps 5
    found, examined = buffer.backlog(flt, 10, 2)
    assert ([e.sequence for e in _entries(found)], examined) == ([8], 2)  # the newest 2 only


def test_slow_subscriber_loses_oldest_entries_and_counts_them() -> None:
    drops: list[int] = []
    subscriber = Subscriber(capacity=3, max_bytes=1 << 20, on_drop=drops.append)
    subscriber.replace_filter(compile_filter(logs_pb2.LogFilter(), MonitorSettings()), [])
    buffer = LogBuffer(capacity=100, max_bytes=1 << 20)
    buffer.subscribers.add(subscriber)
    buffer.append([_entry(f"m{i}") for i in range(5)])
    assert subscriber.dropped == 2
    assert drops == [2], "counted when dropped, not when the subscriber reads again"
    assert [e.message for e in _entries(subscriber.take(10, 1 << 20))] == ["m2", "m3", "m4"]


def _entries(chunks) -> list[logs_pb2.LogEntry]:
    return [entry for chunk in chunks for entry in chunk.entries]


def _subscriber(flt: logs_pb2.LogFilter, capacity: int = 1000) -> Subscriber:
    subscriber = Subscriber(capacity=capacity, max_bytes=1 << 20)
    subscriber.replace_filter(compile_filter(flt, MonitorSettings()), [])
    return subscriber


def _response(subscriber: Subscriber) -> logs_pb2.MonitorResponse:
    chunks = subscriber.take(1000, 1 << 20)
    wire = encode_response(chunks, subscriber.revision, 3)
    return logs_pb2.MonitorResponse.FromString(wire)


@pytest.mark.parametrize(
    "flt",
    [
        logs_pb2.LogFilter(),
        logs_pb2.LogFilter(min_severity=common_pb2.SEVERITY_WARN),
        logs_pb2.LogFilter(sources=["a", "c"]),
        logs_pb2.LogFilter(task_ids=["t1"]),
        logs_pb2.LogFilter(sources=["a"], task_ids=["t1", "t2"], min_severity=13),
        logs_pb2.LogFilter(pattern="m[13579]$"),
        logs_pb2.LogFilter(attributes={"k": "v"}, sources=["b"]),
        logs_pb2.LogFilter(sources=["nobody"]),
    ],
)
def test_fan_out_delivers_exactly_what_the_filter_matches_in_order(flt) -> None:
    buffer = LogBuffer(capacity=100, max_bytes=1 << 20, chunk_entries=4)
    subscriber = _subscriber(flt)
    buffer.subscribers.add(subscriber)
    batch = []
    for i in range(20):
        entry = _entry(f"m{i}", source="abc"[i % 3])
        entry.task_id = f"t{i % 4}"
        entry.severity = (9, 13, 17)[i % 3 if i % 5 else 0]
        if i % 2:
            entry.attributes["k"] = "v"
        batch.append(entry)
    buffer.append(batch)
    compiled = compile_filter(flt, MonitorSettings())
    expected = [e.sequence for e in batch if compiled.matches(e)]
    response = _response(subscriber)
    assert [e.sequence for e in response.entries] == expected
    assert (response.filter_revision, response.dropped) == (1, 3)
    assert all(len(c) <= 4 for c in subscriber.take(10, 1 << 20)), "chunks of a response's size"


def test_subscribers_that_match_the_same_entries_share_one_encoding() -> None:
    buffer = LogBuffer(capacity=100, max_bytes=1 << 20)
    everything = _subscriber(logs_pb2.LogFilter())
    same = _subscriber(logs_pb2.LogFilter())
    info_and_up = _subscriber(logs_pb2.LogFilter(min_severity=common_pb2.SEVERITY_INFO))
    only_a = _subscriber(logs_pb2.LogFilter(sources=["a"]))
    for subscriber in (everything, same, info_and_up, only_a):
        buffer.subscribers.add(subscriber)
    buffer.append([_entry(f"m{i}", source="ab"[i % 2]) for i in range(6)])
    shared = [s.queue.chunks[0] for s in (everything, same, info_and_up)]
    assert shared[0] is shared[1] is shared[2], "one chunk for filters that match the same"
    assert only_a.queue.chunks[0] is not shared[0]
    assert shared[0].encoded() is shared[1].encoded()
    assert [e.message for e in _response(only_a).entries] == ["m0", "m2", "m4"]


def test_a_slow_subscriber_loses_exactly_the_oldest_entries_across_chunks() -> None:
    drops: list[int] = []
    subscriber = Subscriber(capacity=5, max_bytes=1 << 20, on_drop=drops.append)
    subscriber.replace_filter(compile_filter(logs_pb2.LogFilter(), MonitorSettings()), [])
    buffer = LogBuffer(capacity=100, max_bytes=1 << 20, chunk_entries=3)
    buffer.subscribers.add(subscriber)
    buffer.append([_entry(f"m{i}", source="s" * i) for i in range(4)])
    subscriber.queue.chunks[0].encoded()  # a trim cuts the shared encoding
    buffer.append([_entry(f"n{i}") for i in range(3)])
    assert drops == [2]
    assert [e.message for e in _response(subscriber).entries] == ["m2", "m3", "n0", "n1", "n2"]


def test_the_ring_keeps_the_newest_entries_within_its_bytes() -> None:
    one = _entry("x" * 100)
    cost = one.ByteSize() + 8 + ENTRY_OVERHEAD  # with its sequence
    buffer = LogBuffer(capacity=1000, max_bytes=cost * 3, chunk_entries=2)
    buffer.append([_entry("x" * 100) for _ in range(5)])
    assert len(buffer) == 3
    assert buffer.bytes <= cost * 3


def test_a_subscriber_over_its_bytes_loses_just_enough_of_the_oldest() -> None:
    drops: list[int] = []
    cost = _entry("x" * 50).ByteSize() + 2 + ENTRY_OVERHEAD  # with its sequence
    subscriber = Subscriber(capacity=1000, max_bytes=cost * 3, on_drop=drops.append)
    subscriber.replace_filter(compile_filter(logs_pb2.LogFilter(), MonitorSettings()), [])
    buffer = LogBuffer(capacity=100, max_bytes=1 << 20)
    buffer.subscribers.add(subscriber)
    buffer.append([_entry(f"{i}" + "x" * 49) for i in range(5)])
    assert drops == [2]
    assert [e.message[0] for e in _response(subscriber).entries] == ["2", "3", "4"]
