#!/usr/bin/env python3
"""Write Pulse's dashboards as Grafana JSON (`make dashboards`): dashboards/<uid>.json for the
dashboards every deployment shows, and dashboards/<backend>/<uid>.json for the logs dashboard of
each logs backend (the chart provisions the one of its `logs.backend`).

python -m dashboards.generate          # rewrite the JSON
python -m dashboards.generate --check  # exit 1 when a committed file differs or is not generated
"""

from __future__ import annotations

import sys
from pathlib import Path

from grafana_foundation_sdk.models import dashboard as model

from alerts import config
from dashboards import logs, overview, pipeline, sensors, shared_state, slo, streams
from dashboards.common import to_json
from dashboards.logs_backends import BACKENDS

__all__ = ["HERE", "drift", "generated", "main"]

HERE = Path(__file__).resolve().parent


def _boards(monitoring: config.Config) -> dict[str, model.Dashboard]:
    """Path under dashboards/ -> dashboard."""
    boards = {
        f"{board.uid}.json": board
        for board in (
            overview.dashboard(monitoring),
            streams.dashboard(monitoring),
            sensors.dashboard(monitoring),
            slo.dashboard(monitoring),
            pipeline.dashboard(monitoring),
            shared_state.dashboard(monitoring),
        )
    }
    for backend in BACKENDS:
        board = logs.dashboard(monitoring, backend)
        boards[f"{backend.name}/{board.uid}.json"] = board
    return boards


def generated(monitoring: config.Config) -> dict[str, str]:
    """Path under dashboards/ -> its JSON."""
    return {path: to_json(board) for path, board in _boards(monitoring).items()}


def drift(files: dict[str, str], root: Path = HERE) -> list[str]:
    """One line per committed dashboard that differs from `files`, is missing, or is not
    generated at all."""
    problems = [
        f"out of date: {path}"
        for path, text in files.items()
        if not (root / path).is_file() or (root / path).read_text() != text
    ]
    present = {p.relative_to(root).as_posix() for p in root.rglob("*.json")}
    return problems + [f"not generated: {path}" for path in sorted(present - set(files))]


def main(argv: list[str]) -> int:
    files = generated(config.load())
    if "--check" in argv:
        problems = drift(files)
        for line in problems:
            print(f"dashboards: {line}")
        if problems:
            print("run 'make dashboards' and commit dashboards/")
        return 1 if problems else 0
    for path, text in files.items():
        (HERE / path).parent.mkdir(parents=True, exist_ok=True)
        (HERE / path).write_text(text)
        print(f"wrote dashboards/{path}")
    for line in drift(files):
        print(f"dashboards: {line}: remove it")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
