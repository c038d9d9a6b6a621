#!/usr/bin/env python3
"""Write every rule file of alerts/rules/ from alerts/areas/ (`make alerts`).

python -m alerts.generate          # rewrite alerts/rules/*.yaml
python -m alerts.generate --check  # exit 1 when a committed file differs or is not generated
"""

from __future__ import annotations

import sys
from pathlib import Path

from alerts import config
from alerts.areas import AREAS
from alerts.model import render

__all__ = ["RULES", "drift", "main", "rendered"]

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules"


def rendered(monitoring: config.Config) -> dict[str, str]:
    """File name under alerts/rules/ -> its YAML."""
    files = {}
    for area in AREAS:
        rules = area.rule_file(monitoring)
        files[rules.name] = render(rules, f"alerts/areas/{Path(area.__file__).name}")
    return files


def drift(files: dict[str, str], rules: Path = RULES) -> list[str]:
    """One line per committed rule file that differs from `files`, is missing, or is not
    generated at all."""
    problems = [
        f"out of date: {name}"
        for name, text in files.items()
        if not (rules / name).is_file() or (rules / name).read_text() != text
    ]
    extra = sorted({p.name for p in rules.glob("*.yaml")} - set(files))
    return problems + [f"not generated: {name}" for name in extra]


def main(argv: list[str]) -> int:
    files = rendered(config.load())
    if "--check" in argv:
        problems = drift(files)
        for line in problems:
            print(f"alerts/rules: {line}")
        if problems:
            print("run 'make alerts' and commit alerts/rules")
        return 1 if problems else 0
    for name, text in files.items():
        (RULES / name).write_text(text)
        print(f"wrote alerts/rules/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
