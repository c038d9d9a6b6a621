#!/usr/bin/env python3
"""The local stack without containers: Collector, Jaeger, Prometheus, VictoriaLogs, Alertmanager and
the alert webhooks as processes on loopback, started and stopped by PID.

    stack.py up | down | reset | status | urls | start NAME | stop NAME | restart NAME
    stack.py render-alertmanager [DIR]   print the path of the rendered Alertmanager config

Ports default to the documented ones and move with environment variables (see PORTS), or all at
once with PULSE_STACK_PORT_OFFSET. State (rendered configs, data, logs, pid files) lives in
PULSE_STACK_DIR, default .stack/ in the repository. Standard library only, so tests import it.
"""

from __future__ import annotations

import os
import re
import shutil
import string
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from processes import Processes, StartupError, tool, warn_if_ephemeral
from webhooks import RECEIVERS

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

# name -> default port; each is movable by its environment variable of the same name and
# belongs to the component its name starts with.
PORTS = {
    "OTELCOL_OTLP_GRPC_PORT": 4317,
    "OTELCOL_OTLP_HTTP_PORT": 4318,
    "OTELCOL_HEALTH_PORT": 13133,
    "OTELCOL_METRICS_PORT": 8888,
    "JAEGER_UI_PORT": 16686,
    "JAEGER_GRPC_PORT": 16685,
    "JAEGER_OTLP_GRPC_PORT": 14317,
    "JAEGER_OTLP_HTTP_PORT": 14318,
    "JAEGER_METRICS_PORT": 8889,
    "JAEGER_HEALTH_PORT": 13134,
    "PROMETHEUS_PORT": 9090,
    "ALERTMANAGER_PORT": 9093,
    "VICTORIALOGS_PORT": 9428,
    "WEBHOOKS_PORT": 5001,
}
ORDER = ("webhooks", "victorialogs", "jaeger", "alertmanager", "prometheus", "otelcol")
READY_TIMEOUT_S = 120.0
# VictoriaLogs answers 200 to records outside [now - retention, now + future retention] and only
# counts them in vl_rows_dropped_total: the stack keeps the widest window it accepts (100 years),
# so no record a test sends vanishes (tests/e2e checks that counter stays at zero).
VICTORIALOGS_RETENTION = "100y"


@dataclass(frozen=True)
class Component:
    name: str
    tool: str  # a pinned upstream binary (build.sh), or a script of deploy/local ending in .py
    args: Callable[[Stack], list[str]]
    ready_url: Callable[[Stack], str]
    env: Callable[[Stack], dict[str, str]] = lambda s: {}


class Stack:
    def __init__(self, state_dir: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        self.dir = Path(state_dir or self.env.get("PULSE_STACK_DIR") or REPO / ".stack").resolve()
        offset = int(self.env.get("PULSE_STACK_PORT_OFFSET", "0"))
        self.ports = {k: int(self.env.get(k, v + offset)) for k, v in PORTS.items()}
        self.values = {
            **{k: str(v) for k, v in self.ports.items()},
            "STATE_DIR": str(self.dir),
            "PROMETHEUS_SCRAPE_INTERVAL": self.env.get("PROMETHEUS_SCRAPE_INTERVAL", "5s"),
            "PROMETHEUS_EVAL_INTERVAL": self.env.get("PROMETHEUS_EVAL_INTERVAL", "15s"),
            "ALERT_RULES_GLOB": str(REPO / "alerts" / "rules" / "*.yaml"),
        }
        self.components = {c.name: c for c in self._components()}
        self.processes = Processes(self.dir, "PULSE_STACK_PORT_OFFSET")

    # URLs --------------------------------------------------------------------------------------

    def url(self, name: str) -> str:
        p = self.ports
        return {
            "otlp_grpc": f"127.0.0.1:{p['OTELCOL_OTLP_GRPC_PORT']}",
            "otlp_http": f"http://127.0.0.1:{p['OTELCOL_OTLP_HTTP_PORT']}",
            "otelcol_health": f"http://127.0.0.1:{p['OTELCOL_HEALTH_PORT']}",
            "otelcol_metrics": f"http://127.0.0.1:{p['OTELCOL_METRICS_PORT']}/metrics",
            "jaeger": f"http://127.0.0.1:{p['JAEGER_UI_PORT']}",
            "prometheus": f"http://127.0.0.1:{p['PROMETHEUS_PORT']}",
            "alertmanager": f"http://127.0.0.1:{p['ALERTMANAGER_PORT']}",
            "victorialogs": f"http://127.0.0.1:{p['VICTORIALOGS_PORT']}",
            "webhooks": f"http://127.0.0.1:{p['WEBHOOKS_PORT']}",
        }[name]

    @property
    def urls(self) -> dict[str, str]:
        names = (
            "otlp_grpc",
            "otlp_http",
            "otelcol_health",
            "otelcol_metrics",
            "jaeger",
            "prometheus",
            "alertmanager",
            "victorialogs",
            "webhooks",
        )
        return {n: self.url(n) for n in names}

    # Components ------------------------------------------------------------------------------

    def _components(self) -> list[Component]:
        return [
            Component(
                "otelcol",
                "otelcol",
                lambda s: ["--config", str(REPO / "deploy/otel-collector/config.yaml")],
                lambda s: s.url("otelcol_health") + "/",
                lambda s: {
                    "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{s.ports['OTELCOL_OTLP_GRPC_PORT']}",
                    "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{s.ports['OTELCOL_OTLP_HTTP_PORT']}",
                    "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{s.ports['OTELCOL_HEALTH_PORT']}",
                    "OTELCOL_METRICS_HOST": "127.0.0.1",
                    "OTELCOL_METRICS_PORT": str(s.ports["OTELCOL_METRICS_PORT"]),
                    "OTELCOL_STORAGE_DIR": str(s.dir / "otelcol-queue"),
                    "JAEGER_OTLP_ENDPOINT": f"127.0.0.1:{s.ports['JAEGER_OTLP_GRPC_PORT']}",
                    "PROMETHEUS_OTLP_ENDPOINT": s.url("prometheus") + "/api/v1/otlp",
                    "LOGS_OTLP_ENDPOINT": s.url("victorialogs") + "/insert/opentelemetry",
                },
            ),
            Component(
                "jaeger",
                "jaeger",
                lambda s: ["--config", str(s.render("jaeger.yaml"))],
                lambda s: f"http://127.0.0.1:{s.ports['JAEGER_HEALTH_PORT']}/status",
            ),
            Component(
                "prometheus",
                "prometheus",
                lambda s: [
                    f"--config.file={s.render('prometheus.yml')}",
                    f"--storage.tsdb.path={s.dir / 'prometheus'}",
                    f"--web.listen-address=127.0.0.1:{s.ports['PROMETHEUS_PORT']}",
                    "--web.enable-otlp-receiver",
                    "--web.enable-lifecycle",
                    "--enable-feature=exemplar-storage",
                    "--log.level=warn",
                ],
                lambda s: s.url("prometheus") + "/-/ready",
            ),
            Component(
                "alertmanager",
                "alertmanager",
                lambda s: [
                    f"--config.file={s.alertmanager_config()}",
                    f"--storage.path={s.dir / 'alertmanager'}",
                    f"--web.listen-address=127.0.0.1:{s.ports['ALERTMANAGER_PORT']}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                lambda s: s.url("alertmanager") + "/-/ready",
            ),
            Component(
                "victorialogs",
                "victorialogs",
                lambda s: [
                    f"-httpListenAddr=127.0.0.1:{s.ports['VICTORIALOGS_PORT']}",
                    f"-storageDataPath={s.dir / 'victorialogs'}",
                    f"-retentionPeriod={VICTORIALOGS_RETENTION}",
                    f"-futureRetention={VICTORIALOGS_RETENTION}",
                    "-loggerLevel=WARN",
                ],
                lambda s: s.url("victorialogs") + "/health",
            ),
            Component(
                "webhooks",
                "webhooks.py",
                lambda s: [f"--port={s.ports['WEBHOOKS_PORT']}"],
                lambda s: s.url("webhooks") + "/-/ready",
            ),
        ]

    def render(self, template: str) -> Path:
        text = string.Template((HERE / "config" / template).read_text()).substitute(self.values)
        target = self.dir / "config" / template
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def alertmanager_config(self) -> Path:
        """alerts/alertmanager/alertmanager.yml with its receiver URL files in the state dir."""
        source = REPO / "alerts" / "alertmanager" / "alertmanager.yml"
        secrets = self.dir / "alertmanager-secrets"
        secrets.mkdir(parents=True, exist_ok=True)
        base = self.env.get("PULSE_ALERT_WEBHOOK_BASE", self.url("webhooks"))
        for receiver in RECEIVERS:
            (secrets / f"{receiver}.url").write_text(f"{base}/{receiver}\n")
        text = source.read_text().replace("/etc/alertmanager/secrets", str(secrets))
        templates = REPO / "alerts" / "alertmanager" / "templates"
        text = text.replace("/etc/alertmanager/templates", str(templates))
        # Tests may shorten Alertmanager's timings; the routes and receivers stay the same.
        for key in ("group_wait", "group_interval"):
            value = self.env.get(f"ALERTMANAGER_{key.upper()}")
            if value:
                text = re.sub(rf"(?m)^(\s*{key}:) .*$", rf"\g<1> {value}", text)
        target = self.dir / "config" / "alertmanager.yml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    # Processes -------------------------------------------------------------------------------

    def log_file(self, name: str) -> Path:
        return self.processes.log_file(name)

    def pid(self, name: str) -> int | None:
        return self.processes.pid(name)

    def start(self, name: str) -> None:
        component = self.components[name]
        if self.pid(name) is None:
            if component.tool.endswith(".py"):
                program = [sys.executable, str(HERE / component.tool)]
            else:
                program = [tool(component.tool)]
            self.processes.start(
                name,
                [*program, *component.args(self)],
                {**self.env, **component.env(self)},
                self.ports_of(name),
            )

    def ports_of(self, name: str) -> dict[str, int]:
        return {k: v for k, v in self.ports.items() if k.startswith(f"{name.upper()}_")}

    def wait_ready(self, name: str, timeout_s: float = READY_TIMEOUT_S) -> None:
        url = self.components[name].ready_url(self)
        self.processes.wait(name, lambda: _ok(url), timeout_s)

    def stop(self, name: str, grace_s: float = 10.0) -> None:
        self.processes.stop(name, grace_s)

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)
        self.wait_ready(name)

    def up(self, fresh: bool = False, progress: Callable[[str], None] = print) -> float:
        """Start everything in dependency order, wait until each is ready; return seconds."""
        if fresh:
            self.reset()
        elif (self.dir / "prometheus").exists():
            progress(
                f"reusing the metrics, logs and alert state of earlier runs in {self.dir} "
                "(an earlier fault's alerts can still fire): `make stack-reset` empties it"
            )
        started = time.monotonic()
        warn_if_ephemeral(self.ports, progress)
        for name in ORDER:
            progress(f"starting {name}…")
            try:
                self.start(name)
                self.wait_ready(name)
            except BaseException:
                # Whatever stopped the start-up (a component that fails, a tool that does not
                # build, Ctrl-C), nothing of this stack is left running.
                self.down()
                raise
            progress(f"  {name} ready ({time.monotonic() - started:.1f}s)")
        return time.monotonic() - started

    def down(self) -> None:
        for name in reversed(ORDER):
            self.stop(name)

    def reset(self) -> None:
        """Stop the stack and remove its state: data, logs, rendered configs."""
        self.down()
        if self.dir.exists():
            shutil.rmtree(self.dir)

    def status(self) -> dict[str, str]:
        result = {}
        for name in ORDER:
            pid = self.pid(name)
            if pid is None:
                result[name] = "stopped"
            else:
                ready = _ok(self.components[name].ready_url(self))
                result[name] = f"running (pid {pid}, {'ready' if ready else 'not ready'})"
        return result


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: list[str]) -> int:
    stack = Stack()
    command = argv[0] if argv else "status"
    try:
        if command == "up":
            seconds = stack.up()
            print(f"stack ready in {seconds:.1f}s")
            for name, url in stack.urls.items():
                print(f"  {name:16} {url}")
        elif command == "down":
            stack.down()
            print("stack stopped")
        elif command == "reset":
            stack.reset()
            print(f"stack stopped, {stack.dir} removed: the next start begins empty")
        elif command == "status":
            for name, state in stack.status().items():
                print(f"  {name:13} {state}")
        elif command == "urls":
            for name, url in stack.urls.items():
                print(f"  {name:16} {url}")
        elif command == "render-alertmanager":
            # For amtool: the Alertmanager config with this stack's secret and template paths.
            print(Stack(Path(argv[1]) if len(argv) > 1 else None).alertmanager_config())
        elif command in ("start", "stop", "restart") and len(argv) == 2:
            getattr(stack, command)(argv[1])
            if command == "start":
                stack.wait_ready(argv[1])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except StartupError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
