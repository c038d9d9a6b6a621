"""Pieces shared by the subcommands: client flags, gRPC error reporting, key=value parsing."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc

from pulse.client import ClientOptions

__all__ = ["add_client_flags", "client_options", "parse_pairs", "run_client"]

# Exit codes of client commands; documented in `pulse --help`.
EXIT_RPC_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def add_client_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--target", help="host:port of Pulse (env PULSE_TARGET, default localhost:50051)"
    )
    group.add_argument("--token", help="bearer token (env PULSE_TOKEN)")
    group.add_argument("--api-key", help="API key (env PULSE_API_KEY)")
    group.add_argument("--tls-ca", type=Path, help="CA bundle: connect with TLS")
    group.add_argument("--tls-cert", type=Path, help="client certificate for mTLS")
    group.add_argument("--tls-key", type=Path, help="client key for mTLS")


def client_options(args: argparse.Namespace) -> ClientOptions:
    return ClientOptions.from_env(
        target=args.target,
        token=args.token,
        api_key=args.api_key,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )


def parse_pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    pairs = {}
    for value in values or []:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise SystemExit(f"pulse: {flag} expects key=value, got {value!r}")
        pairs[key] = val
    return pairs


def run_client(coro_factory: Callable[[], Awaitable[int]]) -> int:
    """Run a client coroutine; show gRPC errors as one readable line."""
    try:
        return asyncio.run(coro_factory())
    except grpc.aio.AioRpcError as error:
        print(f"pulse: {error.code().name}: {error.details()}", file=sys.stderr)
        return EXIT_RPC_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
