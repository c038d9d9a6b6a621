"""The assembled server over a real channel: health, reflection, auth, faults, admin, drain."""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from helpers import metric_points, metric_total
from pulse.v1 import metrics_pb2, metrics_pb2_grpc, sensors_pb2, sensors_pb2_grpc

LIST = "/pulse.v1.MetricsService/ListMetricTypes"


async def _http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    def call() -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode()

    return await asyncio.to_thread(call)


async def test_health_reports_every_service(pulse_server) -> None:
    srv = await pulse_server()
    health = health_pb2_grpc.HealthStub(srv.channel)
    for service in ("", "pulse.v1.MetricsService", "pulse.v1.LogService", "pulse.v1.SensorService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service


async def test_reflection_lists_the_contract(pulse_server) -> None:
    srv = await pulse_server()
    stub = reflection_pb2_grpc.ServerReflectionStub(srv.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for reply in stub.ServerReflectionInfo(iter([request])):
        names = {s.name for s in reply.list_services_response.service}
        break
    assert {
        "pulse.v1.MetricsService",
        "pulse.v1.LogService",
        "pulse.v1.SensorService",
        "grpc.health.v1.Health",
    } <= names


async def test_auth_refuses_missing_and_wrong_credentials(pulse_server) -> None:
    srv = await pulse_server(auth={"tokens": "tok-1", "api_keys": "key-1"})
    stub = metrics_pb2_grpc.MetricsServiceStub(srv.channel)
    request = metrics_pb2.ListMetricTypesRequest()
    for metadata, reason in (
        ((), "missing"),
        ((("authorization", "Bearer nope"),), "invalid"),
        ((("x-api-key", "nope"),), "invalid"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.ListMetricTypes(request, metadata=metadata)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert f"{reason} credentials" in error.value.details()
        assert "tok-1" not in error.value.details()
    assert (
        metric_total(srv.telemetry, "pulse.auth.failures", **{"pulse.auth.reason": "missing"}) == 1
    )
    assert (
        metric_total(srv.telemetry, "pulse.auth.failures", **{"pulse.auth.reason": "invalid"}) == 2
    )
    ok = await stub.ListMetricTypes(request, metadata=(("authorization", "Bearer tok-1"),))
    assert ok.types
    ok = await stub.ListMetricTypes(request, metadata=(("x-api-key", "key-1"),))
    assert ok.types


async def test_auth_also_guards_streams_but_not_health(pulse_server) -> None:
    srv = await pulse_server(auth={"tokens": "tok-1"})
    stub = sensors_pb2_grpc.SensorServiceStub(srv.channel)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in stub.WatchSummaries(sensors_pb2.WatchSummariesRequest()):
            pass
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    health = health_pb2_grpc.HealthStub(srv.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_faults_are_refused_when_disabled(pulse_server) -> None:
    srv = await pulse_server()
    status, body = await _http("PUT", f"{srv.admin_url}/faults", {LIST: {"error_rate": 1}})
    assert status == 404
    assert "faults.enabled" in body["error"]


async def test_fault_injection_changes_at_run_time(pulse_server) -> None:
    srv = await pulse_server(faults={"enabled": True})
    stub = metrics_pb2_grpc.MetricsServiceStub(srv.channel)
    request = metrics_pb2.ListMetricTypesRequest()
    status, body = await _http("PUT", f"{srv.admin_url}/faults", {LIST: {"error_rate": 1.0}})
    assert status == 200
    assert body == {LIST: {"error_rate": 1.0, "latency_ms": 0}}
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ListMetricTypes(request)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (await _http("GET", f"{srv.admin_url}/faults"))[1] == body
    assert (await _http("DELETE", f"{srv.admin_url}/faults"))[0] == 200
    assert (await stub.ListMetricTypes(request)).types
    await _http("PUT", f"{srv.admin_url}/faults", {LIST: {"latency_ms": 50}})
    assert (await stub.ListMetricTypes(request)).types
    kinds = {
        attrs["pulse.fault.kind"]
        for attrs, _ in metric_points(srv.telemetry, "pulse.faults.injected")
    }
    assert kinds == {"error", "latency"}
    codes = {
        attrs["rpc.response.status_code"]
        for attrs, _ in metric_points(srv.telemetry, "rpc.server.call.duration")
    }
    assert {"OK", "UNAVAILABLE"} <= codes


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"/pulse.v1.Nope/X": {"error_rate": 1}}, "unknown method"),
        ({LIST: {"error_rate": 2}}, "error_rate"),
        ({LIST: {"latency_ms": -1}}, "latency_ms"),
        ({LIST: {"errors": 1}}, "unknown keys"),
        ([1, 2], "body must be an object"),
    ],
)
async def test_bad_fault_specs_name_the_problem_and_change_nothing(
    pulse_server, body: Any, named: str
) -> None:
    srv = await pulse_server(faults={"enabled": True})
    await _http("PUT", f"{srv.admin_url}/faults", {LIST: {"latency_ms": 1}})
    status, reply = await _http("PUT", f"{srv.admin_url}/faults", body)
    assert status == 400
    assert named in reply["error"]
    assert (await _http("GET", f"{srv.admin_url}/faults"))[1] == {
        LIST: {"error_rate": 0.0, "latency_ms": 1}
    }


async def test_admin_endpoints(pulse_server) -> None:
    srv = await pulse_server()
    stub = metrics_pb2_grpc.MetricsServiceStub(srv.channel)
    await stub.ListMetricTypes(metrics_pb2.ListMetricTypesRequest())
    assert await _http("GET", f"{srv.admin_url}/healthz") == (200, {"status": "ok"})
    status, ready = await _http("GET", f"{srv.admin_url}/readyz")
    assert status == 200
    assert ready["status"] == "ready"
    assert ready["checks"]["grpc_serving"] is True
    status, text = await _http("GET", f"{srv.admin_url}/metrics")
    assert status == 200
    assert "rpc_server_call_duration_seconds_count{" in text
    assert 'rpc_method="pulse.v1.MetricsService/ListMetricTypes"' in text
    assert "process_memory_usage_bytes" in text


async def test_rpc_metrics_carry_conventions_and_exemplars(pulse_server) -> None:
    srv = await pulse_server()
    stub = metrics_pb2_grpc.MetricsServiceStub(srv.channel)
    await stub.ListMetricTypes(metrics_pb2.ListMetricTypesRequest())
    with pytest.raises(grpc.aio.AioRpcError):
        await sensors_pb2_grpc.SensorServiceStub(srv.channel).GetSummary(
            sensors_pb2.GetSummaryRequest(sensor_id="nobody")
        )
    points = {
        attrs["rpc.method"]: (attrs, point)
        for attrs, point in metric_points(srv.telemetry, "rpc.server.call.duration")
    }
    attrs, point = points["pulse.v1.MetricsService/ListMetricTypes"]
    assert attrs == {
        "rpc.system.name": "grpc",
        "rpc.method": "pulse.v1.MetricsService/ListMetricTypes",
        "rpc.response.status_code": "OK",
        "pulse.rpc.type": "unary",
    }
    assert points["pulse.v1.SensorService/GetSummary"][0]["rpc.response.status_code"] == "NOT_FOUND"
    span_ids = {s.context.trace_id for s in srv.telemetry.span_exporter.get_finished_spans()}
    assert point.exemplars, "a sampled call leaves a trace-based exemplar"
    assert point.exemplars[0].trace_id in span_ids


async def test_stream_metrics_count_messages_and_active_streams(pulse_server) -> None:
    srv = await pulse_server()
    stub = metrics_pb2_grpc.MetricsServiceStub(srv.channel)
    call = stub.StreamMetrics(metrics_pb2.StreamMetricsRequest(interval_ms=100))
    received = 0
    async for _ in call:
        received += 1
        if received == 1:
            active = metric_total(srv.telemetry, "pulse.rpc.active_streams")
            assert active == 1
        if received == 6:
            call.cancel()
            break
    await asyncio.sleep(0.2)
    assert metric_total(srv.telemetry, "pulse.rpc.active_streams") == 0
    sent = metric_total(
        srv.telemetry,
        "pulse.rpc.stream.messages.sent",
        **{"rpc.method": "pulse.v1.MetricsService/StreamMetrics"},
    )
    assert sent >= 6
    codes = {
        a["rpc.response.status_code"]
        for a, _ in metric_points(srv.telemetry, "rpc.server.call.duration")
        if a["rpc.method"].endswith("StreamMetrics")
    }
    assert codes == {"CANCELLED"}


async def test_drain_answers_not_serving_refuses_new_calls_and_lets_calls_finish(
    pulse_server,
) -> None:
    srv = await pulse_server()
    stub = metrics_pb2_grpc.MetricsServiceStub(srv.channel)
    health = health_pb2_grpc.HealthStub(srv.channel)
    stream = stub.StreamMetrics(metrics_pb2.StreamMetricsRequest(interval_ms=100))
    await stream.read()
    stopping = asyncio.create_task(srv.server.stop(grace=1.0))
    await asyncio.sleep(0.1)
    status, ready = await _http("GET", f"{srv.admin_url}/readyz")
    assert status == 503
    assert ready["checks"]["grpc_serving"] is False
    # A probe during the grace period gets an answer, so "draining" is told from "dead".
    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ListMetricTypes(metrics_pb2.ListMetricTypesRequest(), timeout=2)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in refused.value.details()
    # The open stream keeps flowing during the grace period, then is cancelled.
    assert (await stream.read()).metric_type
    await stopping
    with pytest.raises(grpc.aio.AioRpcError):
        await _read_to_end(stream)


async def _read_to_end(stream: Any) -> None:
    while await stream.read() is not grpc.aio.EOF:
        pass


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture
def certificates(tmp_path: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    d = tmp_path
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=pulse-ca",
        "-keyout",
        str(d / "ca.key"),
        "-out",
        str(d / "ca.pem"),
    )
    for name, extra in (
        ("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            str(d / f"{name}.key"),
            "-out",
            str(d / f"{name}.csr"),
        )
        (d / f"{name}.ext").write_text(extra + "\n")
        _openssl(
            "x509",
            "-req",
            "-in",
            str(d / f"{name}.csr"),
            "-CA",
            str(d / "ca.pem"),
            "-CAkey",
            str(d / "ca.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            str(d / f"{name}.ext"),
            "-out",
            str(d / f"{name}.pem"),
        )
    return {p.stem + p.suffix.replace(".", "_"): p for p in d.iterdir()}


async def test_mutual_tls(pulse_server, certificates: dict[str, Path]) -> None:
    c = certificates
    srv = await pulse_server(
        tls={
            "cert_file": str(c["server_pem"]),
            "key_file": str(c["server_key"]),
            "client_ca_file": str(c["ca_pem"]),
        }
    )
    ca = c["ca_pem"].read_bytes()
    with_cert = grpc.ssl_channel_credentials(
        ca, c["client_key"].read_bytes(), c["client_pem"].read_bytes()
    )
    async with grpc.aio.secure_channel(srv.grpc_address, with_cert) as channel:
        reply = await metrics_pb2_grpc.MetricsServiceStub(channel).ListMetricTypes(
            metrics_pb2.ListMetricTypesRequest(), timeout=10
        )
        assert reply.types
    async with grpc.aio.secure_channel(
        srv.grpc_address, grpc.ssl_channel_credentials(ca)
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await metrics_pb2_grpc.MetricsServiceStub(channel).ListMetricTypes(
                metrics_pb2.ListMetricTypesRequest(), timeout=10
            )
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE


# --- the admin port --------------------------------------------------------------------------


async def _http_raw(
    method: str, url: str, body: bytes, headers: dict[str, str] | None = None, context=None
) -> tuple[int, Any]:
    def call() -> tuple[int, Any]:
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10, context=context) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    return await asyncio.to_thread(call)


async def test_faults_require_the_grpc_credentials(pulse_server) -> None:
    srv = await pulse_server(faults={"enabled": True}, auth={"tokens": "tok", "api_keys": "key"})
    url = f"{srv.admin_url}/faults"
    spec = json.dumps({LIST: {"error_rate": 1.0}}).encode()
    for headers in ({}, {"Authorization": "Bearer nope"}, {"X-Api-Key": "nope"}):
        status, body = await _http_raw("PUT", url, spec, headers)
        assert status == 401, headers
        assert "credentials" in body["error"]
        assert (await _http_raw("GET", url, b"", headers))[0] == 401
    assert srv.server.faults.snapshot() == {}
    assert (await _http_raw("PUT", url, spec, {"Authorization": "Bearer tok"}))[0] == 200
    assert (await _http_raw("DELETE", url, b"", {"X-Api-Key": "key"}))[0] == 200
    # The other endpoints stay open for probes and scrapers.
    assert (await _http("GET", f"{srv.admin_url}/readyz"))[0] == 200


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b'{"\xff": 1}', "not UTF-8"),
        (b'{"' + LIST.encode() + b'": {"latency_ms": ' + b"9" * 5000 + b"}}", "not usable JSON"),
        (b"{oops", "not JSON"),
    ],
    ids=["invalid-utf8", "5000-digit-integer", "broken-json"],
)
async def test_faults_bodies_that_do_not_parse_are_400(pulse_server, body: bytes, named) -> None:
    srv = await pulse_server(faults={"enabled": True})
    status, reply = await _http_raw("PUT", f"{srv.admin_url}/faults", body)
    assert status == 400
    assert named in reply["error"]


async def test_admin_binds_the_grpc_host_unless_told_otherwise(pulse_server) -> None:
    srv = await pulse_server(grpc={"host": "127.0.0.2"}, admin={"host": None})
    assert srv.server._admin._runner.addresses[0][0] == "127.0.0.2"
    status, _ = await _http("GET", f"http://127.0.0.2:{srv.server.admin_port}/healthz")
    assert status == 200


async def test_admin_serves_https_when_grpc_uses_tls(
    pulse_server, certificates: dict[str, Path]
) -> None:
    import ssl

    c = certificates
    srv = await pulse_server(
        faults={"enabled": True},
        tls={
            "cert_file": str(c["server_pem"]),
            "key_file": str(c["server_key"]),
            "client_ca_file": str(c["ca_pem"]),
        },
    )
    url = f"https://127.0.0.1:{srv.server.admin_port}"
    plain = ssl.create_default_context(cafile=str(c["ca_pem"]))
    # Probes and scrapers need no client certificate...
    status, ready = await _http_raw("GET", f"{url}/readyz", None, context=plain)
    assert (status, ready["status"]) == (200, "ready")
    # ...but /faults takes the same credentials as gRPC: here a client certificate.
    status, body = await _http_raw("GET", f"{url}/faults", None, context=plain)
    assert status == 401
    assert "client certificate" in body["error"]
    with_cert = ssl.create_default_context(cafile=str(c["ca_pem"]))
    with_cert.load_cert_chain(c["client_pem"], c["client_key"])
    assert (await _http_raw("GET", f"{url}/faults", None, context=with_cert))[0] == 200
    with pytest.raises((urllib.error.URLError, ConnectionError)):  # no plain HTTP there
        await _http("GET", f"http://127.0.0.1:{srv.server.admin_port}/healthz")


async def test_metrics_stay_when_the_sdk_is_disabled(
    pulse_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prometheus_client import CollectorRegistry

    from pulse.telemetry import build_telemetry

    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    telemetry = build_telemetry("pulse", "test", registry=CollectorRegistry(auto_describe=True))
    srv = await pulse_server(telemetry=telemetry)
    await metrics_pb2_grpc.MetricsServiceStub(srv.channel).ListMetricTypes(
        metrics_pb2.ListMetricTypesRequest()
    )
    status, text = await _http("GET", f"{srv.admin_url}/metrics")
    assert status == 200
    assert 'rpc_method="pulse.v1.MetricsService/ListMetricTypes"' in text
    assert "process_memory_usage_bytes" in text
    telemetry.shutdown()


# --- health and reflection -----------------------------------------------------------------


async def test_health_list_names_every_service(pulse_server) -> None:
    srv = await pulse_server()
    reply = await health_pb2_grpc.HealthStub(srv.channel).List(health_pb2.HealthListRequest())
    assert set(reply.statuses) == {
        "",
        "pulse.v1.MetricsService",
        "pulse.v1.LogService",
        "pulse.v1.SensorService",
    }
    assert {s.status for s in reply.statuses.values()} == {health_pb2.HealthCheckResponse.SERVING}


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
async def test_reflection_describes_services_and_methods(pulse_server, version: str) -> None:
    """What `grpcurl list` and `grpcurl describe pulse.v1.LogService.Ingest` ask, through the
    reflection client's descriptor database, under both service names."""
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    srv = await pulse_server()
    stub = reflection_pb2_grpc.ServerReflectionStub(srv.channel)
    if version == "v1":
        stub.ServerReflectionInfo = srv.channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )

    async def ask(**request: str) -> reflection_pb2.ServerReflectionResponse:
        async for reply in stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(**request)])
        ):
            return reply
        raise AssertionError("no reply")

    names = {s.name for s in (await ask(list_services="")).list_services_response.service}
    assert {"grpc.reflection.v1.ServerReflection", "pulse.v1.LogService"} <= names
    reply = await ask(file_containing_symbol="pulse.v1.LogService.Ingest")
    assert reply.WhichOneof("message_response") == "file_descriptor_response", reply

    def describe() -> str:
        with grpc.insecure_channel(srv.grpc_address) as channel:
            pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
            method = pool.FindMethodByName("pulse.v1.LogService.Ingest")
            return f"{method.input_type.full_name} {method.client_streaming}"

    if version == "v1alpha":  # the reflection client speaks v1alpha
        assert await asyncio.to_thread(describe) == "pulse.v1.IngestRequest True"
