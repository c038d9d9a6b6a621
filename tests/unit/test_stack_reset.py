"""`make stack-reset`: the local stack's state (metrics, logs, alerts of earlier runs) goes, so the
next start begins empty."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_reset_removes_the_state_of_earlier_runs(tmp_path: Path) -> None:
    state = tmp_path / "stack"
    for part in ("prometheus/wal", "victorialogs", "alertmanager", "logs", "run"):
        (state / part).mkdir(parents=True)
    (state / "prometheus" / "wal" / "00000000").write_text("samples")
    out = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "local" / "stack.py"), "reset"],
        env={"PULSE_STACK_DIR": str(state), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert not state.exists()
    assert "the next start begins empty" in out
