#!/usr/bin/env python3
"""`make run`: the local stack, Pulse (fault injection on) and the load generator in the
foreground, then where to look. Ctrl-C stops everything it started.

Pulse listens on loopback, on its configured ports (PULSE_GRPC_PORT, PULSE_ADMIN_PORT); its and
the load generator's logs go to the stack's logs directory. Runs with Pulse's virtualenv.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from guide import PulseAddress, guide, latest_trace_id
from processes import StartupError
from stack import Stack

from pulse import config

READY_TIMEOUT_S = 60.0
FIRST_TRACE_TIMEOUT_S = 30.0


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def run(stack: Stack, out: IO[str]) -> int:
    # Loopback unless told otherwise; the environment `pulse serve` gets is the one read here.
    os.environ.setdefault("PULSE_GRPC_HOST", "127.0.0.1")
    os.environ.setdefault("PULSE_ADMIN_HOST", "127.0.0.1")
    os.environ["PULSE_FAULTS_ENABLED"] = "true"
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://{stack.url('otlp_grpc')}"
    try:
        settings = config.load()
    except config.ConfigError as error:
        print(f"pulse: {error}", file=out)
        return 2
    env = dict(os.environ)
    pulse = PulseAddress(
        f"{settings.grpc.host}:{settings.grpc.port}",
        f"http://{settings.admin.host}:{settings.admin.port}",
    )
    logs = stack.log_file("pulse").parent
    children: list[subprocess.Popen] = []
    try:
        stack.up(progress=lambda line: print(line, file=out, flush=True))
        print("starting Pulse and the load generator…", file=out, flush=True)
        server_log = logs / "pulse.log"
        server = _start([sys.executable, "-m", "pulse", "serve"], env, server_log)
        children.append(server)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _ready(f"{pulse.admin}/readyz"):
            if server.poll() is not None or time.monotonic() > deadline:
                print(f"Pulse did not get ready; {server_log}:\n{_tail(server_log)}", file=out)
                return 1
            time.sleep(0.3)
        loadgen = _start(
            [sys.executable, "-m", "pulse", "loadgen", "--target", pulse.grpc],
            env,
            logs / "loadgen.log",
        )
        children.append(loadgen)
        trace_id = latest_trace_id(stack, FIRST_TRACE_TIMEOUT_S)
        print(f"\nPulse runs with the load generator (logs in {logs}). Look at:\n", file=out)
        print(guide(stack, pulse, trace_id), file=out)
        print("\nCtrl-C stops Pulse, the load generator and the stack.", file=out, flush=True)
        server.wait()
        print(f"Pulse exited with status {server.returncode}; {server_log}", file=out)
        return server.returncode or 1
    except StartupError as error:
        print(f"stack: {error}", file=out)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(children)
        stack.down()
        print("stopped", file=out, flush=True)


def main() -> int:
    # Ctrl-C, and SIGTERM (make interrupted, a closed terminal), stop everything; SIGINT may
    # arrive ignored from a shell that started this in the background.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    return run(Stack(), sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
