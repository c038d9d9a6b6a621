"""SensorService: idempotent, persisted readings and rolling summaries per sensor."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from pulse.config import Settings
from pulse.sensor_service.store import Reading, SensorStore
from pulse.sensor_service.watchers import Watcher, Watchers
from pulse.sensor_service.window import Summary, Window
from pulse.telemetry import Telemetry
from pulse.telemetry import conventions as c
from pulse.telemetry.ticks import StreamTick
from pulse.v1 import sensors_pb2, sensors_pb2_grpc
from pulse.validation import echo, time_problem

__all__ = ["SensorComponent", "SensorServicer"]

_log = logging.getLogger("pulse.sensors")

MAX_ID_CHARS = 128
MAX_WATCH_IDS = 1000
MAX_FUTURE_NS = 5 * 60 * 10**9  # readings from more than 5 minutes ahead are refused
OTHER = "other"


def _validate(reading: sensors_pb2.Reading, low: float, high: float, now_ns: int) -> str | None:
    """Why ``reading`` is refused, or None."""
    for name in ("id", "sensor_id"):
        value = getattr(reading, name)
        if not value:
            return f"{name} is required"
        if len(value) > MAX_ID_CHARS:
            return f"{name} is longer than {MAX_ID_CHARS} characters"
    t = reading.temperature
    if not math.isfinite(t) or not low <= t <= high:
        return f"temperature {t} is outside [{low}, {high}]"
    if reading.HasField("time"):
        problem = time_problem(reading.time)
        if problem is not None:
            return problem
        if reading.time.ToNanoseconds() > now_ns + MAX_FUTURE_NS:
            return "time is more than 5 minutes in the future"
    return None


def _timestamp(ns: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(ns)
    return stamp


def to_message(summary: Summary) -> sensors_pb2.SensorSummary:
    return sensors_pb2.SensorSummary(
        sensor_id=summary.sensor_id,
        min_temperature=summary.min,
        max_temperature=summary.max,
        avg_temperature=summary.avg,
        window_size=summary.size,
        time=_timestamp(summary.newest_ns),
        readings_total=summary.total,
    )


class SensorServicer(sensors_pb2_grpc.SensorServiceServicer):
    def __init__(self, settings: Settings, telemetry: Telemetry, store: SensorStore) -> None:
        self._settings = settings.sensors
        self._tick_s = settings.telemetry.stream_tick_s
        self._telemetry = telemetry
        self._store = store
        self._windows: dict[str, Window] = {}
        self._labelled: set[str] = set()
        self.watchers = Watchers()
        self.record_streams = 0

    def load(self, rows: list[tuple[str, int, list[tuple[int, float]]]]) -> None:
        for sensor_id, total, readings in rows:
            window = Window(sensor_id, self._settings.window)
            for time_ns, value in readings:
                window.add(time_ns, value)
            window.total = total
            self._windows[sensor_id] = window

    async def Record(
        self,
        request_iterator: AsyncIterator[sensors_pb2.Reading],
        context: grpc.aio.ServicerContext,
    ) -> sensors_pb2.RecordResponse:
        limit = self._settings.max_record_streams
        if self.record_streams >= limit:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"too many Record calls: limit is {limit}"
            )
        self.record_streams += 1
        accepted = duplicates = rejected = 0
        try:
            async for reading in request_iterator:
                a, d, r = await self._record_one(reading)
                accepted, duplicates, rejected = accepted + a, duplicates + d, rejected + r
        finally:
            self.record_streams -= 1
        return sensors_pb2.RecordResponse(
            accepted=accepted, duplicates=duplicates, rejected=rejected
        )

    async def _record_one(self, message: sensors_pb2.Reading) -> tuple[int, int, int]:
        instruments = self._telemetry.instruments
        with self._telemetry.tracer.start_as_current_span("sensor.record") as span:
            now_ns = time.time_ns()
            problem = _validate(
                message, self._settings.min_temperature, self._settings.max_temperature, now_ns
            )
            if problem is not None:
                outcome = "rejected"
                span.set_attribute("pulse.sensor.problem", problem)
                _log.info("reading rejected: %s", problem)
            else:
                t = message.time.ToNanoseconds() if message.HasField("time") else now_ns
                reading = Reading(message.id, message.sensor_id, t, message.temperature)
                inserted = await self._store.insert_new([reading])
                outcome = "accepted" if inserted else "duplicate"
                if inserted:
                    self._apply(reading)
            span.set_attribute(c.ATTR_SENSOR_OUTCOME, outcome)
            instruments.sensor_readings.add(1, {c.ATTR_SENSOR_OUTCOME: outcome})
        return outcome == "accepted", outcome == "duplicate", outcome == "rejected"

    def _apply(self, reading: Reading) -> None:
        window = self._windows.get(reading.sensor_id)
        if window is None:
            window = self._windows[reading.sensor_id] = Window(
                reading.sensor_id, self._settings.window
            )
        window.add(reading.time_ns, reading.temperature)
        summary = window.summary()
        self._export(summary)
        self.watchers.publish(summary)

    def _export(self, summary: Summary) -> None:
        label = summary.sensor_id
        if label not in self._labelled:
            if len(self._labelled) < self._settings.max_labelled_sensors:
                self._labelled.add(label)
            else:
                label = OTHER
        gauge = self._telemetry.instruments.sensor_temperature
        for statistic, value in (("min", summary.min), ("max", summary.max), ("avg", summary.avg)):
            gauge.set(value, {c.ATTR_SENSOR_ID: label, c.ATTR_SENSOR_STATISTIC: statistic})

    async def GetSummary(
        self, request: sensors_pb2.GetSummaryRequest, context: grpc.aio.ServicerContext
    ) -> sensors_pb2.SensorSummary:
        if not request.sensor_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "sensor_id is required")
        window = self._windows.get(request.sensor_id)
        if window is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"sensor_id {echo(request.sensor_id)}: no readings",
            )
        return to_message(window.summary())

    async def WatchSummaries(
        self, request: sensors_pb2.WatchSummariesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[sensors_pb2.SensorSummary]:
        ids = list(request.sensor_ids)
        if len(ids) > MAX_WATCH_IDS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"sensor_ids: at most {MAX_WATCH_IDS} ids"
            )
        if any(not i or len(i) > MAX_ID_CHARS for i in ids):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"sensor_ids: each id is 1 to {MAX_ID_CHARS} characters",
            )
        if len(self.watchers) >= self._settings.max_watchers:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many WatchSummaries calls: limit is {self._settings.max_watchers}",
            )
        watcher = Watcher(ids)
        self.watchers.add(watcher)
        self._telemetry.instruments.sensor_watchers.add(1)
        tick = StreamTick(self._telemetry.tracer, "sensors.watch.tick", self._tick_s)
        try:
            for window in list(self._windows.values()):
                if watcher.wants(window.sensor_id):
                    yield to_message(window.summary())
            sent = 0
            while True:
                for summary in await watcher.next_batch(tick.remaining_s()):
                    yield to_message(summary)
                    sent += 1
                if tick.due():
                    tick.emit({"pulse.stream.messages_sent": sent})
                    sent = 0
        finally:
            self.watchers.remove(watcher)
            self._telemetry.instruments.sensor_watchers.add(-1)


class SensorComponent:
    service_names = ("pulse.v1.SensorService",)

    def __init__(self, settings: Settings, telemetry: Telemetry) -> None:
        self.store = SensorStore(settings.sensor_database)
        self.servicer = SensorServicer(settings, telemetry, self.store)
        self._window = settings.sensors.window
        self._open = False

    def register(self, server: grpc.aio.Server) -> None:
        sensors_pb2_grpc.add_SensorServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        await self.store.open()
        self.servicer.load(await self.store.load(self._window))
        self._open = True

    async def stop(self) -> None:
        self._open = False
        await self.store.close()

    async def checks(self) -> dict[str, bool]:
        return {"sensor_store": self._open and await self.store.healthy()}
