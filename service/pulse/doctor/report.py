"""The checklist ``pulse doctor`` prints."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from pulse.doctor.checks import Check

__all__ = ["print_report"]


def print_report(checks: Iterable[Check], out: TextIO) -> bool:
    """Print one line per check, with the fix under each failure; True when all passed."""
    all_ok = True
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        print(f"[{mark}] {check.name}: {check.detail}", file=out)
        if not check.ok:
            all_ok = False
            if check.fix:
                print(f"       fix: {check.fix}", file=out)
    print("all checks passed" if all_ok else "some checks failed", file=out)
    return all_ok
