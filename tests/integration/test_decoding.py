"""Request bytes that do not decode: INVALID_ARGUMENT with one throttled warning, after auth."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
import pytest

from helpers import metric_points
from pulse.server.app import pulse_methods
from pulse.v1 import logs_pb2

GARBAGE = b"\xff\xff\xff\xff"
# LogFilter.pattern (field 4, length-delimited) holding a byte that is not UTF-8.
NOT_UTF8 = bytes([4 << 3 | 2, 1, 0xFF])
TRUNCATED = logs_pb2.IngestRequest(
    batch_id="b", entries=[logs_pb2.LogEntry(message="m" * 50, source="s")]
).SerializeToString()[:-10]


def _shape(method: str) -> tuple[bool, bool]:
    from google.protobuf import descriptor_pool

    service, name = method[1:].split("/")
    descriptor = descriptor_pool.Default().FindServiceByName(service).methods_by_name[name]
    return descriptor.client_streaming, descriptor.server_streaming


async def _raw_call(
    channel: grpc.aio.Channel, method: str, payload: bytes, metadata: tuple = ()
) -> grpc.StatusCode:
    client_streaming, server_streaming = _shape(method)
    kind = {
        (False, False): channel.unary_unary,
        (True, False): channel.stream_unary,
        (False, True): channel.unary_stream,
        (True, True): channel.stream_stream,
    }[(client_streaming, server_streaming)]
    call = kind(method)  # no serializers: the bytes go out as they are

    async def one() -> AsyncIterator[bytes]:
        yield payload

    request = one() if client_streaming else payload
    try:
        if server_streaming:
            async for _ in call(request, metadata=metadata, timeout=10):
                pass
        else:
            await call(request, metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def _statuses(telemetry) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for attrs, _ in metric_points(telemetry, "rpc.server.call.duration"):
        found.setdefault(attrs["rpc.method"], set()).add(attrs["rpc.response.status_code"])
    return found


@pytest.mark.parametrize("payload", [GARBAGE, TRUNCATED], ids=["garbage", "truncated"])
async def test_undecodable_requests_are_invalid_argument_on_every_method(
    pulse_server, payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    srv = await pulse_server()
    caplog.set_level(logging.INFO)
    for method in pulse_methods():
        if method.endswith("ListMetricTypes") and payload is TRUNCATED:
            continue  # an empty request type: every prefix of bytes may still parse
        code = await _raw_call(srv.channel, method, payload)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, method
    statuses = _statuses(srv.telemetry)
    assert statuses
    assert all(codes == {"INVALID_ARGUMENT"} for codes in statuses.values()), statuses
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_invalid_utf8_in_a_string_field_is_named(pulse_server) -> None:
    srv = await pulse_server()
    call = srv.channel.stream_stream("/pulse.v1.LogService/Monitor")

    async def one() -> AsyncIterator[bytes]:
        yield NOT_UTF8

    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in call(one(), timeout=10):
            pass
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid pulse.v1.LogFilter" in error.value.details()


async def test_warnings_are_one_line_and_throttled(
    pulse_server, caplog: pytest.LogCaptureFixture
) -> None:
    srv = await pulse_server()
    caplog.set_level(logging.WARNING, logger="pulse.server.decoding")
    for _ in range(30):
        await _raw_call(srv.channel, "/pulse.v1.SensorService/GetSummary", GARBAGE)
    lines = [r for r in caplog.records if r.name == "pulse.server.decoding"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].exc_info is None
    assert "\n" not in lines[0].getMessage()


async def test_an_unauthenticated_caller_is_told_so_before_its_bytes_are_read(
    pulse_server,
) -> None:
    srv = await pulse_server(auth={"tokens": "tok"})
    for method in pulse_methods():
        assert await _raw_call(srv.channel, method, GARBAGE) == grpc.StatusCode.UNAUTHENTICATED
    authorized = (("authorization", "Bearer tok"),)
    code = await _raw_call(srv.channel, "/pulse.v1.SensorService/GetSummary", GARBAGE, authorized)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
