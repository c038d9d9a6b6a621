import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamMetricsRequest(_message.Message):
    __slots__ = ("metric_types", "interval_ms", "label_filters")
    class LabelFiltersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    METRIC_TYPES_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FILTERS_FIELD_NUMBER: _ClassVar[int]
    metric_types: _containers.RepeatedScalarFieldContainer[str]
    interval_ms: int
    label_filters: _containers.ScalarMap[str, str]
    def __init__(self, metric_types: _Optional[_Iterable[str]] = ..., interval_ms: _Optional[int] = ..., label_filters: _Optional[_Mapping[str, str]] = ...) -> None: ...

class MetricData(_message.Message):
    __slots__ = ("metric_type", "value", "unit", "time", "labels", "sequence")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    METRIC_TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    metric_type: str
    value: float
    unit: str
    time: _timestamp_pb2.Timestamp
    labels: _containers.ScalarMap[str, str]
    sequence: int
    def __init__(self, metric_type: _Optional[str] = ..., value: _Optional[float] = ..., unit: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., sequence: _Optional[int] = ...) -> None: ...

class ListMetricTypesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MetricType(_message.Message):
    __slots__ = ("name", "unit", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    unit: str
    description: str
    def __init__(self, name: _Optional[str] = ..., unit: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ListMetricTypesResponse(_message.Message):
    __slots__ = ("types",)
    TYPES_FIELD_NUMBER: _ClassVar[int]
    types: _containers.RepeatedCompositeFieldContainer[MetricType]
    def __init__(self, types: _Optional[_Iterable[_Union[MetricType, _Mapping]]] = ...) -> None: ...
