"""``pulse serve`` and ``pulse config show``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from pulse.cli.common import EXIT_USAGE
from pulse.config import ConfigError, Settings, load

__all__ = ["add_parsers"]


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML configuration file (env PULSE_CONFIG)")
    parser.add_argument("--host", help="address gRPC binds (grpc.host)")
    parser.add_argument("--grpc-port", type=int, help="gRPC port (grpc.port, default 50051)")
    parser.add_argument("--admin-port", type=int, help="admin HTTP port (admin.port, default 9464)")
    parser.add_argument("--data-dir", type=Path, help="persistent data (data_dir)")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides.setdefault("grpc", {})["host"] = args.host
    if args.grpc_port is not None:
        overrides.setdefault("grpc", {})["port"] = args.grpc_port
    if args.admin_port is not None:
        overrides.setdefault("admin", {})["port"] = args.admin_port
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    if args.log_level is not None:
        overrides.setdefault("telemetry", {})["log_level"] = args.log_level
    return overrides


def _settings(args: argparse.Namespace) -> Settings | None:
    try:
        return load(args.config, _overrides(args))
    except ConfigError as error:
        print(f"pulse: {error}", file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return EXIT_USAGE
    from pulse.server.run import serve

    return serve(settings)


def _masked(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "***"
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _show(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return EXIT_USAGE
    print(yaml.safe_dump(_masked(settings.model_dump()), sort_keys=False), end="")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="run the Pulse server")
    _add_config_flags(serve)
    serve.set_defaults(func=_serve)
    config = sub.add_parser("config", help="configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    show = config_sub.add_parser("show", help="print the effective configuration, secrets masked")
    _add_config_flags(show)
    show.set_defaults(func=_show)
