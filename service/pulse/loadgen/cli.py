"""``pulse loadgen``: every kind of client against one Pulse, until Ctrl-C or --duration."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from pulse.cli.common import add_client_flags, client_options
from pulse.loadgen.runner import LoadConfig, LoadGenerator

__all__ = ["add_parser"]


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(f"PULSE_LOADGEN_{name}", default))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("loadgen", help="generate load with every kind of client")
    p.add_argument(
        "--duration",
        type=float,
        default=float(os.environ.get("PULSE_LOADGEN_DURATION", 0)),
        help="seconds to run; 0 runs until interrupted (env PULSE_LOADGEN_DURATION)",
    )
    p.add_argument("--dashboards", type=int, default=_env_int("DASHBOARDS", 3))
    p.add_argument("--agents", type=int, default=_env_int("AGENTS", 2))
    p.add_argument("--operators", type=int, default=_env_int("OPERATORS", 2))
    p.add_argument("--sensors", type=int, default=_env_int("SENSORS", 5))
    p.add_argument("--watchers", type=int, default=_env_int("WATCHERS", 1))
    p.add_argument("--ingest-batch", type=int, default=_env_int("INGEST_BATCH", 20))
    p.add_argument("--ingest-interval", type=float, default=0.5, help="seconds between batches")
    p.add_argument("--unary-interval", type=float, default=1.0, help="seconds between unary calls")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--no-telemetry",
        action="store_true",
        help="do not export client telemetry (pulse-loadgen) over OTLP",
    )
    add_client_flags(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    config = LoadConfig(
        client=client_options(args),
        duration_s=args.duration,
        dashboards=args.dashboards,
        agents=args.agents,
        operators=args.operators,
        sensors=args.sensors,
        watchers=args.watchers,
        ingest_batch=args.ingest_batch,
        ingest_interval_s=args.ingest_interval,
        unary_interval_s=args.unary_interval,
        seed=args.seed,
    )
    return asyncio.run(_main(config, telemetry=not args.no_telemetry))


async def _main(config: LoadConfig, telemetry: bool) -> int:
    from pulse.telemetry import build_telemetry

    tel = build_telemetry(
        "pulse-loadgen",
        os.environ.get("PULSE_TELEMETRY_ENVIRONMENT", "development"),
        export=telemetry,
    )
    generator = LoadGenerator(config, tel)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, generator.stop.set)
    try:
        await generator.run()
    finally:
        tel.shutdown()
    return 0
