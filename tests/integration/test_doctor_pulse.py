"""`pulse doctor`'s Pulse check against a real Pulse: not ready is an answer that names the
failing check, never "did not answer"; Pulse's HTTPS admin port is verified against --tls-ca."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import trustme

from pulse.doctor.checks import DirectBackends, backend_checks, https_context, pulse_serving


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


async def test_the_https_admin_port_is_verified_against_the_ca_given(
    pulse_server, tmp_path: Path
) -> None:
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "other", "cert", "key")}
    ca.cert_pem.write_to_path(str(files["ca"]))
    other.cert_pem.write_to_path(str(files["other"]))
    for blob in server.cert_chain_pems:
        blob.write_to_path(str(files["cert"]), append=True)
    server.private_key_pem.write_to_path(str(files["key"]))
    srv = await pulse_server(tls={"cert_file": str(files["cert"]), "key_file": str(files["key"])})
    url = f"https://127.0.0.1:{srv.server.admin_port}"

    def serving(ca_file: Path):
        backends = DirectBackends({"pulse": url}, contexts={"pulse": https_context(str(ca_file))})
        [check] = backend_checks(backends, frozenset({"prometheus", "jaeger", "loki"}))
        return check

    check = await asyncio.to_thread(serving, files["ca"])
    assert check.ok, check
    check = await asyncio.to_thread(serving, files["other"])
    assert not check.ok
    assert "CERTIFICATE_VERIFY_FAILED" in check.detail


def test_a_missing_ca_file_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "ca.crt"
    result = subprocess.run(
        [sys.executable, "-m", "pulse", "doctor", "--in-cluster", "--tls-ca", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"pulse doctor: --tls-ca {missing}: no such file"
