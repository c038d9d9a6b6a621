"""SensorService: idempotent, persisted readings and rolling summaries per sensor, on the
embedded state of one process or the PostgreSQL state shared by several (``state``)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from pulse.config import Settings
from pulse.sensor_service.embedded import EmbeddedSensorState
from pulse.sensor_service.postgres import PostgresSensorState
from pulse.sensor_service.state import SensorState, StateUnavailable
from pulse.sensor_service.store import Reading
from pulse.sensor_service.watchers import Watcher, Watchers
from pulse.sensor_service.window import Summary
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
        if "\x00" in value:  # no database keeps it in text
            return f"{name} contains a NUL character"
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


RECORDED_BEFORE = (
    "readings before this one in the call were recorded; retrying them with the same ids is safe"
)


class SensorServicer(sensors_pb2_grpc.SensorServiceServicer):
    def __init__(self, settings: Settings, telemetry: Telemetry, state: SensorState) -> None:
        self._settings = settings.sensors
        self._tick_s = settings.telemetry.stream_tick_s
        self._telemetry = telemetry
        self._state = state
        self._labelled: set[str] = set()
        self.watchers = Watchers()
        self.record_streams = 0
        # Every new summary, whichever replica recorded its reading.
        state.listen(self._on_summary)

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
                try:
                    a, d, r = await self._record_one(reading)
                except StateUnavailable as error:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, f"{error}; {RECORDED_BEFORE}")
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
                outcome = "accepted" if await self._state.record(reading) else "duplicate"
            span.set_attribute(c.ATTR_SENSOR_OUTCOME, outcome)
            instruments.sensor_readings.add(1, {c.ATTR_SENSOR_OUTCOME: outcome})
        return outcome == "accepted", outcome == "duplicate", outcome == "rejected"

    def _on_summary(self, summary: Summary) -> None:
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
        try:
            summary = await self._state.summary(request.sensor_id)
        except StateUnavailable as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        if summary is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"sensor_id {echo(request.sensor_id)}: no readings",
            )
        return to_message(summary)

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
            try:
                current = await self._state.summaries(ids)
            except StateUnavailable as error:
                await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
            for summary in current:
                yield to_message(summary)
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


def build_state(settings: Settings, telemetry: Telemetry) -> SensorState:
    """PostgreSQL when ``sensors.database_url`` is set, else SQLite in the data directory."""
    s = settings.sensors
    if s.database_url is None:
        return EmbeddedSensorState(settings.sensor_database, s.window)
    return PostgresSensorState(
        s.database_url.get_secret_value(),
        s.window,
        telemetry.tracer,
        telemetry.meter,
        pool_size=s.database_pool_size,
        timeout_s=s.database_timeout_s,
    )


class SensorComponent:
    service_names = ("pulse.v1.SensorService",)

    def __init__(self, settings: Settings, telemetry: Telemetry) -> None:
        self.state = build_state(settings, telemetry)
        self.servicer = SensorServicer(settings, telemetry, self.state)

    def register(self, server: grpc.aio.Server) -> None:
        sensors_pb2_grpc.add_SensorServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        await self.state.start()

    async def stop(self) -> None:
        await self.state.stop()

    async def checks(self) -> dict[str, bool]:
        return {"sensor_store": await self.state.healthy()}
