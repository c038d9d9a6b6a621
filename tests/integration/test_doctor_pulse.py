"""`pulse doctor`'s Pulse check against a real Pulse: not ready is an answer that names the
failing check, never "did not answer"."""

from __future__ import annotations

import asyncio

from pulse.doctor.checks import DirectBackends, backend_checks, pulse_serving


async def test_a_ready_pulse_passes(pulse_server) -> None:
    srv = await pulse_server()
    check = await asyncio.to_thread(pulse_serving, DirectBackends({"pulse": srv.admin_url}))
    assert check.ok, check


async def test_a_not_ready_pulse_is_named_with_its_failing_check(pulse_server) -> None:
    srv = await pulse_server()
    await srv.break_sensor_database()
    backends = DirectBackends({"pulse": srv.admin_url})
    skip = frozenset({"prometheus", "jaeger", "loki"})
    [check] = await asyncio.to_thread(backend_checks, backends, skip)
    assert not check.ok
    assert "did not answer" not in check.detail
    assert check.detail == "/readyz says not ready: ['sensor_store']"
