"""The code that decides what the SLOs read, tested directly: Pulse's interceptor chain on a
small servicer with all four RPC shapes, over a real channel to a real server.

For each shape and each way a call ends (OK, an error, CANCELLED, DEADLINE_EXCEEDED) the
recorded status, RPC type, message counts and active streams must be exactly right.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import wrappers_pb2

from helpers import metric_points, metric_total
from pulse.config import Settings
from pulse.server.app import PulseServer
from pulse.telemetry import build_test_telemetry

SERVICE = "pulse.test.Shapes"
Text = wrappers_pb2.StringValue
BIG = "x" * 65536  # large enough that an unread stream blocks the writer on flow control


class Shapes:
    """Unary, ClientStream, ServerStream, Bidi. A request "fail" aborts with INVALID_ARGUMENT,
    "wait" waits for the client to go away, "flood" streams large messages without end."""

    service_names = (SERVICE,)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def checks(self) -> dict[str, bool]:
        return {}

    def register(self, server: grpc.aio.Server) -> None:
        codec = {
            "request_deserializer": Text.FromString,
            "response_serializer": Text.SerializeToString,
        }
        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(self.unary, **codec),
            "ClientStream": grpc.stream_unary_rpc_method_handler(self.client_stream, **codec),
            "ServerStream": grpc.unary_stream_rpc_method_handler(self.server_stream, **codec),
            "Bidi": grpc.stream_stream_rpc_method_handler(self.bidi, **codec),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))

    @staticmethod
    async def _act(value: str, context: grpc.aio.ServicerContext) -> None:
        if value == "fail":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "asked to fail")
        if value == "wait":
            await asyncio.sleep(60)

    async def unary(self, request: Text, context: grpc.aio.ServicerContext) -> Text:
        await self._act(request.value, context)
        return Text(value=request.value)

    async def client_stream(self, requests: AsyncIterator[Text], context: Any) -> Text:
        count = 0
        async for request in requests:
            count += 1
            await self._act(request.value, context)
        return Text(value=str(count))

    async def server_stream(self, request: Text, context: Any) -> AsyncIterator[Text]:
        for i in range(3):
            yield Text(value=str(i))
        while request.value == "flood":
            yield Text(value=BIG)
        await self._act(request.value, context)

    async def bidi(self, requests: AsyncIterator[Text], context: Any) -> AsyncIterator[Text]:
        async for request in requests:
            yield Text(value=request.value)
            await self._act(request.value, context)


@pytest.fixture
async def shapes(tmp_path):
    settings = Settings(
        data_dir=tmp_path,
        grpc={"host": "127.0.0.1", "port": 0},
        admin={"host": "127.0.0.1", "port": 0},
    )
    telemetry = build_test_telemetry()
    server = PulseServer(settings, telemetry, components=[Shapes()])
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield server, telemetry, channel
    await channel.close()
    await server.stop(grace=0.5)


def _callable(channel: grpc.aio.Channel, shape: str) -> Any:
    kind = {
        "Unary": channel.unary_unary,
        "ClientStream": channel.stream_unary,
        "ServerStream": channel.unary_stream,
        "Bidi": channel.stream_stream,
    }[shape]
    return kind(
        f"/{SERVICE}/{shape}",
        request_serializer=Text.SerializeToString,
        response_deserializer=Text.FromString,
    )


async def _requests(*values: str) -> AsyncIterator[Text]:
    for value in values:
        yield Text(value=value)
    await asyncio.sleep(60)  # the client keeps its side open


async def _closed(*values: str) -> AsyncIterator[Text]:
    for value in values:
        yield Text(value=value)


TYPES = {
    "Unary": "unary",
    "ClientStream": "client_stream",
    "ServerStream": "server_stream",
    "Bidi": "bidi_stream",
}


def _recorded(telemetry, shape: str) -> list[dict[str, Any]]:
    method = f"{SERVICE}/{shape}"
    return [
        attrs
        for attrs, _ in metric_points(telemetry, "rpc.server.call.duration")
        if attrs["rpc.method"] == method
    ]


def _count(telemetry, name: str, shape: str) -> float:
    return metric_total(telemetry, name, **{"rpc.method": f"{SERVICE}/{shape}"})


async def _ended(telemetry, shape: str) -> list[dict[str, Any]]:
    """Wait until the server recorded the call (a cancel reaches the server a little later)."""
    for _ in range(200):
        if recorded := _recorded(telemetry, shape):
            return recorded
        await asyncio.sleep(0.02)
    raise AssertionError(f"{shape}: no call recorded")


async def _ok(channel: grpc.aio.Channel, shape: str) -> tuple[int, int]:
    """Run one successful call; (messages the client sent on a stream, received on a stream)."""
    call = _callable(channel, shape)
    if shape == "Unary":
        assert (await call(Text(value="hi"), timeout=10)).value == "hi"
        return 0, 0
    if shape == "ClientStream":
        assert (await call(_closed("a", "b", "c"), timeout=10)).value == "3"
        return 3, 0
    if shape == "ServerStream":
        assert [r.value async for r in call(Text(value="x"), timeout=10)] == ["0", "1", "2"]
        return 0, 3
    assert [r.value async for r in call(_closed("a", "b"), timeout=10)] == ["a", "b"]
    return 2, 2


@pytest.mark.parametrize("shape", list(TYPES))
async def test_ok_records_type_status_and_counts(shapes, shape: str) -> None:
    _, telemetry, channel = shapes
    sent_by_client, received_by_client = await _ok(channel, shape)
    [attrs] = await _ended(telemetry, shape)
    assert attrs == {
        "rpc.system.name": "grpc",
        "rpc.method": f"{SERVICE}/{shape}",
        "rpc.response.status_code": "OK",
        "pulse.rpc.type": TYPES[shape],
    }
    assert _count(telemetry, "pulse.rpc.stream.messages.received", shape) == sent_by_client
    assert _count(telemetry, "pulse.rpc.stream.messages.sent", shape) == received_by_client
    assert _count(telemetry, "pulse.rpc.active_streams", shape) == 0


def _start(channel: grpc.aio.Channel, shape: str, value: str, timeout: float | None) -> Any:
    call = _callable(channel, shape)
    if shape in ("Unary", "ServerStream"):
        return call(Text(value=value), timeout=timeout)
    return call(_requests(value), timeout=timeout)


async def _finish(call: Any) -> grpc.StatusCode:
    try:
        if hasattr(call, "read"):
            while await call.read() is not grpc.aio.EOF:
                pass
        else:
            await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    except asyncio.CancelledError:
        return grpc.StatusCode.CANCELLED
    return await call.code()


@pytest.mark.parametrize("shape", list(TYPES))
async def test_an_error_is_the_handlers_status(shapes, shape: str) -> None:
    _, telemetry, channel = shapes
    call = _start(channel, shape, "fail", timeout=10)
    assert await _finish(call) == grpc.StatusCode.INVALID_ARGUMENT
    [attrs] = await _ended(telemetry, shape)
    assert attrs["rpc.response.status_code"] == "INVALID_ARGUMENT"
    assert attrs["pulse.rpc.type"] == TYPES[shape]
    if shape in ("ClientStream", "Bidi"):
        assert _count(telemetry, "pulse.rpc.stream.messages.received", shape) == 1
    assert _count(telemetry, "pulse.rpc.active_streams", shape) == 0


@pytest.mark.parametrize("shape", list(TYPES))
@pytest.mark.parametrize("value", ["wait", "flood"])
async def test_a_cancel_is_cancelled_and_logs_no_error(
    shapes, shape: str, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    if value == "flood" and shape != "ServerStream":
        value = "wait"  # only a server stream can flood
    _, telemetry, channel = shapes
    caplog.set_level(logging.WARNING)
    call = _start(channel, shape, value, timeout=None)
    await asyncio.sleep(0.3)  # the server is waiting, or blocked writing to a full window
    if shape != "Unary":
        assert _count(telemetry, "pulse.rpc.active_streams", shape) == 1
    call.cancel()
    [attrs] = await _ended(telemetry, shape)
    assert attrs["rpc.response.status_code"] == "CANCELLED"
    assert attrs["pulse.rpc.type"] == TYPES[shape]
    assert _count(telemetry, "pulse.rpc.active_streams", shape) == 0
    if shape in ("ClientStream", "Bidi"):
        assert _count(telemetry, "pulse.rpc.stream.messages.received", shape) == 1
    if shape == "ServerStream" and value == "flood":
        assert _count(telemetry, "pulse.rpc.stream.messages.sent", shape) >= 3
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


@pytest.mark.parametrize("shape", list(TYPES))
async def test_an_expired_deadline_is_deadline_exceeded(shapes, shape: str) -> None:
    _, telemetry, channel = shapes
    call = _start(channel, shape, "wait", timeout=0.5)
    assert await _finish(call) == grpc.StatusCode.DEADLINE_EXCEEDED
    [attrs] = await _ended(telemetry, shape)
    assert attrs["rpc.response.status_code"] == "DEADLINE_EXCEEDED"
    assert attrs["pulse.rpc.type"] == TYPES[shape]
    assert _count(telemetry, "pulse.rpc.active_streams", shape) == 0
    if shape == "ServerStream":
        assert _count(telemetry, "pulse.rpc.stream.messages.sent", shape) == 3
