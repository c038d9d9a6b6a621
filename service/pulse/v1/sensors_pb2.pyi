import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Reading(_message.Message):
    __slots__ = ("id", "sensor_id", "temperature", "time")
    ID_FIELD_NUMBER: _ClassVar[int]
    SENSOR_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    sensor_id: str
    temperature: float
    time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., sensor_id: _Optional[str] = ..., temperature: _Optional[float] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordResponse(_message.Message):
    __slots__ = ("accepted", "duplicates", "rejected")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicates: int
    rejected: int
    def __init__(self, accepted: _Optional[int] = ..., duplicates: _Optional[int] = ..., rejected: _Optional[int] = ...) -> None: ...

class WatchSummariesRequest(_message.Message):
    __slots__ = ("sensor_ids",)
    SENSOR_IDS_FIELD_NUMBER: _ClassVar[int]
    sensor_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, sensor_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetSummaryRequest(_message.Message):
    __slots__ = ("sensor_id",)
    SENSOR_ID_FIELD_NUMBER: _ClassVar[int]
    sensor_id: str
    def __init__(self, sensor_id: _Optional[str] = ...) -> None: ...

class SensorSummary(_message.Message):
    __slots__ = ("sensor_id", "min_temperature", "max_temperature", "avg_temperature", "window_size", "time", "readings_total")
    SENSOR_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    AVG_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SIZE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    READINGS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    sensor_id: str
    min_temperature: float
    max_temperature: float
    avg_temperature: float
    window_size: int
    time: _timestamp_pb2.Timestamp
    readings_total: int
    def __init__(self, sensor_id: _Optional[str] = ..., min_temperature: _Optional[float] = ..., max_temperature: _Optional[float] = ..., avg_temperature: _Optional[float] = ..., window_size: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., readings_total: _Optional[int] = ...) -> None: ...
