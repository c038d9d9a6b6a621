#!/usr/bin/env python3
"""Write Pulse's dashboards as Grafana JSON into dashboards/ (`make dashboards`).

python -m dashboards.generate          # rewrite dashboards/*.json
python -m dashboards.generate --check  # exit 1 when a committed file differs
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dashboards.pulse import DASHBOARDS

HERE = Path(__file__).resolve().parent


def render(uid: str) -> str:
    return json.dumps(DASHBOARDS[uid](), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for uid in DASHBOARDS:
        path = HERE / f"{uid}.json"
        text = render(uid)
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote dashboards/{path.name}")
    extra = {p.name for p in HERE.glob("*.json")} - {f"{uid}.json" for uid in DASHBOARDS}
    if check and (stale or extra):
        print(
            f"dashboards out of date: {sorted(stale)}; not generated: {sorted(extra)}; "
            "run 'make dashboards'"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
