"""StreamMetrics and ListMetricTypes over a real channel."""

from __future__ import annotations

import asyncio
import itertools

import grpc
import pytest

from helpers import metric_points
from pulse.v1 import metrics_pb2, metrics_pb2_grpc

Req = metrics_pb2.StreamMetricsRequest


async def _collect(stub, request, n: int) -> list[metrics_pb2.MetricData]:
    got = []
    call = stub.StreamMetrics(request)
    async for message in call:
        got.append(message)
        if len(got) == n:
            call.cancel()
            break
    return got


async def test_list_metric_types_describes_all_seven(pulse_server) -> None:
    srv = await pulse_server()
    reply = await metrics_pb2_grpc.MetricsServiceStub(srv.channel).ListMetricTypes(
        metrics_pb2.ListMetricTypesRequest()
    )
    names = [t.name for t in reply.types]
    assert names == [
        "cpu_usage",
        "memory_usage",
        "disk_io",
        "network_io",
        "request_rate",
        "error_rate",
        "latency",
    ]
    assert all(t.unit and t.description for t in reply.types)


async def test_default_types_for_every_source_in_order(pulse_server) -> None:
    srv = await pulse_server()
    stub = metrics_pb2_grpc.MetricsServiceStub(srv.channel)
    got = await _collect(stub, Req(interval_ms=100), 24)
    assert [m.sequence for m in got] == list(range(1, 25))
    first_cycle = got[:12]
    assert {m.metric_type for m in first_cycle} == {"cpu_usage", "memory_usage", "network_io"}
    assert len({m.labels["host"] for m in first_cycle}) == 4
    assert {m.labels["region"] for m in first_cycle} == {"eu-west-1", "us-east-1"}
    times = [m.time.ToNanoseconds() for m in got]
    assert times == sorted(times)
    # Evenly spread: 12 samples per 100 ms cycle.
    gaps = [(b - a) / 1e6 for a, b in itertools.pairwise(times)]
    assert all(abs(gap - 100 / 12) < 0.01 for gap in gaps)


async def test_label_filters_keep_matching_sources_only(pulse_server) -> None:
    srv = await pulse_server()
    stub = metrics_pb2_grpc.MetricsServiceStub(srv.channel)
    request = Req(
        metric_types=["latency", "error_rate"],
        interval_ms=100,
        label_filters={"region": "us-east-1"},
    )
    got = await _collect(stub, request, 12)
    assert {m.labels["region"] for m in got} == {"us-east-1"}
    assert {m.metric_type for m in got} == {"latency", "error_rate"}
    assert {m.unit for m in got} == {"ms", "percent"}


@pytest.mark.parametrize(
    ("request_", "named"),
    [
        (
            Req(metric_types=["cpu_usage", "gpu"]),
            "metric_types[1]: unknown type 'gpu'; allowed: cpu_usage",
        ),
        (Req(metric_types=["cpu_usage", "cpu_usage"]), "metric_types: each type may appear once"),
        (Req(interval_ms=99), "interval_ms: 99 is outside [100, 60000]"),
        (Req(interval_ms=60001), "interval_ms: 60001 is outside"),
        (Req(label_filters={"region": "mars"}), "label_filters: no source matches"),
        (Req(label_filters={f"k{i}": "v" for i in range(17)}), "label_filters: at most 16"),
        (Req(label_filters={"k": "v" * 200}), "at most 128 characters"),
    ],
)
async def test_invalid_requests_name_the_field(pulse_server, request_, named: str) -> None:
    srv = await pulse_server()
    stub = metrics_pb2_grpc.MetricsServiceStub(srv.channel)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await _collect(stub, request_, 1)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in error.value.details()


async def test_stream_limit_gives_resource_exhausted(pulse_server) -> None:
    srv = await pulse_server(metrics={"max_streams": 1})
    stub = metrics_pb2_grpc.MetricsServiceStub(srv.channel)
    first = stub.StreamMetrics(Req(interval_ms=100))
    await first.read()
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await _collect(stub, Req(interval_ms=100), 1)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "limit is 1" in error.value.details()
    first.cancel()


async def test_cancel_and_deadline_stop_the_generator(pulse_server) -> None:
    srv = await pulse_server()
    servicer = srv.server.components[0].servicer
    stub = metrics_pb2_grpc.MetricsServiceStub(srv.channel)
    call = stub.StreamMetrics(Req(interval_ms=60000))
    await call.read()
    assert servicer.active == 1
    call.cancel()
    for _ in range(100):
        if servicer.active == 0:
            break
        await asyncio.sleep(0.02)
    assert servicer.active == 0
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in stub.StreamMetrics(Req(interval_ms=60000), timeout=0.5):
            pass
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    for _ in range(100):
        if servicer.active == 0:
            break
        await asyncio.sleep(0.02)
    assert servicer.active == 0


async def test_ticks_and_lag_are_recorded(pulse_server) -> None:
    srv = await pulse_server()
    stub = metrics_pb2_grpc.MetricsServiceStub(srv.channel)
    await _collect(stub, Req(interval_ms=100, metric_types=["cpu_usage"]), 30)
    ticks = [
        s for s in srv.telemetry.span_exporter.get_finished_spans() if s.name == "metrics.tick"
    ]
    assert ticks
    assert ticks[0].attributes["pulse.stream.messages_sent"] > 0
    assert ticks[0].parent is not None  # a child of the StreamMetrics server span
    lag = metric_points(srv.telemetry, "pulse.metrics.schedule.lag")
    assert lag
    assert lag[0][1].count >= 5


async def test_an_echoed_value_is_cut_so_the_answer_stays_invalid_argument(pulse_server) -> None:
    srv = await pulse_server()
    stub = metrics_pb2_grpc.MetricsServiceStub(srv.channel)
    for request in (
        metrics_pb2.StreamMetricsRequest(metric_types=["x" * 17_000]),
        metrics_pb2.StreamMetricsRequest(label_filters={"k" * 17_000: "v"}),
        metrics_pb2.StreamMetricsRequest(label_filters={"host": "h" * 100}),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.StreamMetrics(request).read()
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert len(error.value.details()) < 1000


async def test_memory_usage_is_a_percentage_like_cpu(pulse_server) -> None:
    srv = await pulse_server()
    stub = metrics_pb2_grpc.MetricsServiceStub(srv.channel)
    types = {
        t.name: t for t in (await stub.ListMetricTypes(metrics_pb2.ListMetricTypesRequest())).types
    }
    assert types["memory_usage"].unit == types["cpu_usage"].unit == "percent"
    assert "memory" in types["memory_usage"].description
    call = stub.StreamMetrics(
        metrics_pb2.StreamMetricsRequest(metric_types=["memory_usage"], interval_ms=100)
    )
    values = [(await call.read()).value for _ in range(8)]
    call.cancel()
    assert all(0 <= v <= 100 for v in values)
