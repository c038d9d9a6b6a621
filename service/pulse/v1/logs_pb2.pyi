import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pulse.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LogEntry(_message.Message):
    __slots__ = ("time", "severity", "message", "source", "task_id", "attributes", "trace_id", "span_id", "sequence")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TIME_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    severity: _common_pb2.Severity
    message: str
    source: str
    task_id: str
    attributes: _containers.ScalarMap[str, str]
    trace_id: str
    span_id: str
    sequence: int
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., severity: _Optional[_Union[_common_pb2.Severity, str]] = ..., message: _Optional[str] = ..., source: _Optional[str] = ..., task_id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., trace_id: _Optional[str] = ..., span_id: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("batch_id", "entries")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    entries: _containers.RepeatedCompositeFieldContainer[LogEntry]
    def __init__(self, batch_id: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[LogEntry, _Mapping]]] = ...) -> None: ...

class IngestResponse(_message.Message):
    __slots__ = ("accepted", "rate_limited", "rejected", "redacted", "truncated", "duplicate_batches")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    REDACTED_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_BATCHES_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    rate_limited: int
    rejected: int
    redacted: int
    truncated: int
    duplicate_batches: int
    def __init__(self, accepted: _Optional[int] = ..., rate_limited: _Optional[int] = ..., rejected: _Optional[int] = ..., redacted: _Optional[int] = ..., truncated: _Optional[int] = ..., duplicate_batches: _Optional[int] = ...) -> None: ...

class LogFilter(_message.Message):
    __slots__ = ("min_severity", "sources", "task_ids", "pattern", "attributes", "backlog")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MIN_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    BACKLOG_FIELD_NUMBER: _ClassVar[int]
    min_severity: _common_pb2.Severity
    sources: _containers.RepeatedScalarFieldContainer[str]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    pattern: str
    attributes: _containers.ScalarMap[str, str]
    backlog: int
    def __init__(self, min_severity: _Optional[_Union[_common_pb2.Severity, str]] = ..., sources: _Optional[_Iterable[str]] = ..., task_ids: _Optional[_Iterable[str]] = ..., pattern: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., backlog: _Optional[int] = ...) -> None: ...

class MonitorResponse(_message.Message):
    __slots__ = ("entries", "filter_revision", "dropped")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    FILTER_REVISION_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LogEntry]
    filter_revision: int
    dropped: int
    def __init__(self, entries: _Optional[_Iterable[_Union[LogEntry, _Mapping]]] = ..., filter_revision: _Optional[int] = ..., dropped: _Optional[int] = ...) -> None: ...
