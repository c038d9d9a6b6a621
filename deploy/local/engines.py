#!/usr/bin/env python3
"""The shared engines of several Pulse replicas, on loopback and without containers: PostgreSQL
(the sensor store; Debian's package, run by initdb and pg_ctl as a non-root user) and NATS with
JetStream (the log bus; built from its pinned Go module by build.sh).

    engines.py install                  install Debian's PostgreSQL when missing, build nats-server
    engines.py up | down | status | urls
    engines.py start NAME | stop NAME   NAME: postgresql or nats

Ports default to the engines' own and move with POSTGRESQL_PORT, NATS_PORT and
NATS_MONITOR_PORT, or all at once with PULSE_STACK_PORT_OFFSET, like the stack's. State lives in
PULSE_ENGINES_DIR, default .engines/ in the repository. Standard library only, so tests import it.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import shutil
import string
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from processes import Processes, StartupError, busy_ports, tool, warn_if_ephemeral

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

PORTS = {"POSTGRESQL_PORT": 5432, "NATS_PORT": 4222, "NATS_MONITOR_PORT": 8222}
ORDER = ("postgresql", "nats")
OWNERS = {"POSTGRESQL_PORT": "postgresql", "NATS_PORT": "nats", "NATS_MONITOR_PORT": "nats"}
READY_TIMEOUT_S = 60.0
DATABASE = "pulse"
USER = "pulse"


def _versions() -> dict[str, str]:
    pins = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            pins[key.strip()] = value.strip()
    return pins


def postgresql_bin() -> Path:
    """Debian's directory of the pinned PostgreSQL major version's server programs."""
    return Path(f"/usr/lib/postgresql/{_versions()['POSTGRESQL_MAJOR']}/bin")


def install(progress: Callable[[str], None]) -> None:
    """Install Debian's PostgreSQL package when missing (idempotent), build nats-server."""
    package = f"postgresql-{_versions()['POSTGRESQL_MAJOR']}"
    if not (postgresql_bin() / "initdb").is_file():
        if os.geteuid() != 0:
            raise SystemExit(f"PostgreSQL is missing: run `sudo apt-get install {package}`")
        progress(f"installing {package} from Debian's packages…")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", package],
            check=True,
            env=env,
        )
    tool("nats-server")


class Engines:
    def __init__(self, state_dir: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        self.dir = Path(
            state_dir or self.env.get("PULSE_ENGINES_DIR") or REPO / ".engines"
        ).resolve()
        offset = int(self.env.get("PULSE_STACK_PORT_OFFSET", "0"))
        self.ports = {k: int(self.env.get(k, v + offset)) for k, v in PORTS.items()}
        self.processes = Processes(self.dir, "PULSE_STACK_PORT_OFFSET")

    def ports_of(self, name: str) -> dict[str, int]:
        return {k: v for k, v in self.ports.items() if OWNERS[k] == name}

    # URLs --------------------------------------------------------------------------------------

    def postgresql_url(self, database: str = DATABASE) -> str:
        password = self._password_file.read_text().strip()
        return (
            f"postgresql://{USER}:{password}@127.0.0.1:{self.ports['POSTGRESQL_PORT']}/{database}"
        )

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.ports['NATS_PORT']}"

    @property
    def nats_monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['NATS_MONITOR_PORT']}"

    @property
    def urls(self) -> dict[str, str]:
        return {
            "PULSE_SENSORS_DATABASE_URL": self.postgresql_url(),
            "PULSE_BUS_URL": self.nats_url,
            "nats monitoring": self.nats_monitor_url,
        }

    # PostgreSQL --------------------------------------------------------------------------------

    @property
    def _password_file(self) -> Path:
        return self.dir / "postgresql.password"

    def _runner(self) -> tuple[list[str], str]:
        """The command prefix that runs PostgreSQL's programs as a non-root user (the server
        refuses root), and that user."""
        if os.geteuid() != 0:
            return [], pwd.getpwuid(os.geteuid()).pw_name
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise StartupError(
                "postgresql", "needs the user 'postgres' (Debian's package creates it)"
            ) from None
        return ["runuser", "-u", "postgres", "--"], "postgres"

    def postgresql_dir(self) -> Path:
        """Where the cluster lives: in the state dir when its user can reach it, else in a
        directory of the system's temporary folder named after the state dir."""
        prefix, _ = self._runner()
        here = self.dir / "postgresql"
        self.dir.mkdir(parents=True, exist_ok=True)
        if not prefix or self._reachable(prefix, self.dir):
            return here
        digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"pulse-postgresql-{digest}"

    @staticmethod
    def _reachable(prefix: list[str], path: Path) -> bool:
        probe = subprocess.run([*prefix, "test", "-x", str(path)], check=False)
        return probe.returncode == 0

    def _pg(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        prefix, _ = self._runner()
        return subprocess.run(
            [*prefix, str(postgresql_bin() / program), *args],
            check=check,
            capture_output=True,
            text=True,
            env={**os.environ, "PGPASSWORD": self._password_file.read_text().strip()}
            if self._password_file.exists()
            else None,
        )

    def _initdb(self, data: Path) -> None:
        _, user = self._runner()
        root = data.parent
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self._password_file.exists():
            self._password_file.write_text(secrets.token_urlsafe(18) + "\n")
            self._password_file.chmod(0o600)
        pwfile = root / "initdb.password"
        pwfile.write_text(self._password_file.read_text())
        shutil.chown(root, user)
        shutil.chown(pwfile, user)
        try:
            self._pg(
                "initdb",
                f"--pgdata={data}",
                f"--username={USER}",
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            )
        except subprocess.CalledProcessError as error:
            raise StartupError("postgresql", f"initdb failed: {error.stderr.strip()}") from None
        finally:
            pwfile.unlink(missing_ok=True)

    def postgresql_running(self) -> bool:
        data = self.postgresql_dir() / "data"
        return (data / "PG_VERSION").exists() and self._pg(
            "pg_ctl", "status", f"--pgdata={data}", check=False
        ).returncode == 0

    def start_postgresql(self) -> None:
        if not (postgresql_bin() / "initdb").is_file():
            raise StartupError(
                "postgresql", f"is not installed ({postgresql_bin()}): run `engines.py install`"
            )
        root = self.postgresql_dir()
        data = root / "data"
        if not (data / "PG_VERSION").exists():
            self._initdb(data)
        if self.postgresql_running():
            return

        busy = busy_ports(self.ports_of("postgresql"))
        if busy:
            taken = ", ".join(f"port {port} ({key})" for key, port in busy.items())
            raise StartupError(
                "postgresql",
                f"cannot listen: {taken} already in use by another process; "
                "stop it or move the ports with PULSE_STACK_PORT_OFFSET",
            )
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-p {self.ports['POSTGRESQL_PORT']}",
                "-c unix_socket_directories=''",
                "-c shared_buffers=32MB",
                "-c max_connections=200",
            ]
        )
        started = self._pg(
            "pg_ctl",
            "start",
            "--wait",
            f"--timeout={READY_TIMEOUT_S:.0f}",
            f"--pgdata={data}",
            f"--log={root / 'postgresql.log'}",
            f"--options={options}",
            check=False,
        )
        if started.returncode != 0:
            raise StartupError("postgresql", "did not start", self._pg_log_tail(root))
        self._create_database(DATABASE)

    def _pg_log_tail(self, root: Path) -> str:
        try:
            return "\n".join((root / "postgresql.log").read_text().splitlines()[-20:])
        except OSError:
            return "(no log)"

    def _client(self, program: str, *args: str) -> subprocess.CompletedProcess:
        return self._pg(
            program, "--host=127.0.0.1", f"--port={self.ports['POSTGRESQL_PORT']}", *args
        )

    def _create_database(self, name: str) -> None:
        exists = self._client(
            "psql",
            f"--username={USER}",
            "--dbname=postgres",
            "--tuples-only",
            "--no-align",
            f"--command=SELECT 1 FROM pg_database WHERE datname = '{name}'",
        ).stdout.strip()
        if exists != "1":
            self._client("createdb", f"--username={USER}", name)

    def stop_postgresql(self, mode: str = "fast") -> None:
        """``mode``: fast (roll back sessions, shut down cleanly) or immediate (like a crash)."""
        data = self.postgresql_dir() / "data"
        if self.postgresql_running():
            self._pg("pg_ctl", "stop", f"--pgdata={data}", f"--mode={mode}", "--wait")

    # NATS --------------------------------------------------------------------------------------

    def _nats_config(self) -> Path:
        values = {**{k: str(v) for k, v in self.ports.items()}, "STATE_DIR": str(self.dir)}
        text = string.Template((HERE / "config" / "nats.conf").read_text()).substitute(values)
        target = self.dir / "config" / "nats.conf"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def _nats_ready(self) -> bool:
        url = f"{self.nats_monitor_url}/healthz?js-enabled-only=true"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start_nats(self) -> None:
        argv = [tool("nats-server"), "--config", str(self._nats_config())]
        self.processes.start("nats", argv, ports=self.ports_of("nats"))
        self.processes.wait("nats", self._nats_ready, READY_TIMEOUT_S)

    def stop_nats(self) -> None:
        self.processes.stop("nats")

    # All -----------------------------------------------------------------------------------------

    def start(self, name: str) -> None:
        {"postgresql": self.start_postgresql, "nats": self.start_nats}[name]()

    def stop(self, name: str) -> None:
        {"postgresql": self.stop_postgresql, "nats": self.stop_nats}[name]()

    def running(self, name: str) -> bool:
        if name == "postgresql":
            return self.postgresql_running()
        return self.processes.pid("nats") is not None and self._nats_ready()

    def up(self, progress: Callable[[str], None] = print) -> None:
        warn_if_ephemeral(self.ports, progress)
        started: list[str] = []
        try:
            for name in ORDER:
                progress(f"starting {name}…")
                self.start(name)
                started.append(name)
        except BaseException:
            for name in reversed(started):
                self.stop(name)
            raise

    def down(self) -> None:
        for name in reversed(ORDER):
            self.stop(name)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "install":
        install(lambda line: print(line, file=sys.stderr))
        return 0
    engines = Engines()
    try:
        if command == "up":
            engines.up()
            for key, url in engines.urls.items():
                print(f"  {key}={url}")
        elif command == "down":
            engines.down()
        elif command == "status":
            for name in ORDER:
                print(f"  {name:<11} {'running' if engines.running(name) else 'stopped'}")
        elif command == "urls":
            for key, url in engines.urls.items():
                print(f"{key}={url}")
        elif command in ("start", "stop") and len(argv) == 3 and argv[2] in ORDER:
            getattr(engines, command)(argv[2])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except StartupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
