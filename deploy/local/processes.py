"""Background processes of the local stack and the local control plane: pinned upstream binaries
started detached in their own session, tracked by pid files, logging to files, stopped by pid.
Standard library only, so tests import it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path

__all__ = [
    "Processes",
    "StartupError",
    "alive",
    "busy_ports",
    "ephemeral_ports",
    "tool",
    "warn_if_ephemeral",
]

HERE = Path(__file__).resolve().parent


@cache
def tool(name: str) -> str:
    """Path of a pinned upstream binary, built first when missing (with progress on stderr);
    resolved once per process."""
    out = subprocess.run(
        [str(HERE / "build.sh"), "path", name], check=True, stdout=subprocess.PIPE, text=True
    )
    return out.stdout.strip().splitlines()[-1]


class StartupError(RuntimeError):
    def __init__(self, name: str, problem: str, tail: str | None = None) -> None:
        log = f"; last lines of its log:\n{tail}" if tail is not None else ""
        super().__init__(f"{name} {problem}{log}")
        self.component = name


def ephemeral_ports() -> range:
    """The kernel's local ports for outgoing connections: a listener placed in this range can
    find its port taken by any client socket of the machine."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    return range(low, high + 1)


def warn_if_ephemeral(ports: Mapping[str, int], progress: Callable[[str], None]) -> None:
    outgoing = ephemeral_ports()
    for key, port in ports.items():
        if port in outgoing:
            progress(
                f"warning: port {port} ({key}) lies in the kernel's range for outgoing "
                f"connections ({outgoing.start}-{outgoing.stop - 1}), which can take it"
            )


def busy_ports(ports: Mapping[str, int], host: str = "127.0.0.1") -> dict[str, int]:
    """Those of ``ports`` (variable -> port) that cannot be listened on right now."""
    busy = {}
    for key, port in ports.items():
        with socket.socket() as probe:
            # As the Go servers bind: a connection lingering in TIME_WAIT does not block them.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                busy[key] = port
    return busy


def alive(pid: int) -> bool:
    """Whether ``pid`` runs; a child that exited is reaped so it does not linger as a zombie."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # started by another process (e.g. `stack.py up` from a shell)
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


class Processes:
    """The processes of one state directory: ``run/<name>.pid`` and ``logs/<name>.log``."""

    def __init__(self, state_dir: Path, offset_variable: str) -> None:
        self.dir = state_dir
        self.offset_variable = offset_variable  # moves every port at once

    def _pid_file(self, name: str) -> Path:
        return self.dir / "run" / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    def pid(self, name: str) -> int | None:
        try:
            pid = int(self._pid_file(name).read_text())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def start(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        ports: Mapping[str, int] | None = None,
    ) -> None:
        """Start ``argv`` as ``name`` unless it already runs; fail first, naming the variable,
        when one of the ``ports`` it listens on is taken."""
        if self.pid(name) is not None:
            return
        busy = busy_ports(ports or {})
        if busy:
            taken = ", ".join(f"port {port} ({key})" for key, port in busy.items())
            raise StartupError(
                name,
                f"cannot listen: {taken} already in use by another process; "
                f"stop it or move the ports with {self.offset_variable}",
            )
        for sub in ("run", "logs"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        with self.log_file(name).open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.dir,
                start_new_session=True,
            )
        self._pid_file(name).write_text(str(process.pid))

    def wait(
        self, name: str, ready: Callable[[], bool], timeout_s: float, process: str | None = None
    ) -> None:
        """Poll ``ready`` until it holds; fail with the log's tail when the process ``process``
        (default ``name``) exits first or time runs out."""
        process = process or name
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.pid(process) is None:
                raise StartupError(name, "exited during start-up", self.tail(process))
            if ready():
                return
            time.sleep(0.25)
        raise StartupError(name, f"not ready after {timeout_s:.0f}s", self.tail(process))

    def stop(self, name: str, grace_s: float = 10.0) -> None:
        """SIGTERM to the process's session, SIGKILL after ``grace_s``."""
        pid = self.pid(name)
        if pid is not None:
            os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline and self.pid(name) is not None:
                time.sleep(0.1)
            if self.pid(name) is not None:
                os.killpg(pid, signal.SIGKILL)
                while self.pid(name) is not None:
                    time.sleep(0.05)
        self._pid_file(name).unlink(missing_ok=True)

    def tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
