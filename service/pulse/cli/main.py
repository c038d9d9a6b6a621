"""``pulse``: serve, inspect and drive Pulse."""

from __future__ import annotations

import argparse
import sys

from pulse import __version__
from pulse.cli import doctor, serve, watch
from pulse.cli.common import EXIT_INTERRUPTED

__all__ = ["build_parser", "main"]

EPILOG = """exit status: 0 success; 1 the server answered with an error (shown as CODE: details);
2 invalid usage or configuration; 130 interrupted."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pulse", description=__doc__, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"pulse {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve.add_parsers(sub)
    watch.add_parsers(sub)
    doctor.add_parsers(sub)
    from pulse.loadgen.cli import add_parser as add_loadgen

    add_loadgen(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()
        return 0
