"""``make profile``: py-spy flame graphs of ``pulse serve`` under the benchmark's workloads.

Each workload runs against a Pulse of its own while py-spy samples it without stopping it
(``--nonblocking``) for the workload's whole length: the SVG flame graph to open in a browser,
and the same samples as collapsed stacks, from which the frames with the most samples of their
own are printed. ``python -m bench.profile DIR [ingest|fanout|streams ...]``.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.processes import pulse
from bench.workloads import STREAM_SECONDS, ingest_rate, stream_lags

RATE_HZ = 200
TOP = 15
WORKLOADS: dict[str, tuple[str, float, Callable[[int], Awaitable[object]]]] = {
    "ingest": ("one Ingest stream, batches of 100", 5.0, lambda port: ingest_rate(port)),
    "fanout": (
        "one Ingest stream and 10 Monitor subscribers",
        5.0,
        lambda port: ingest_rate(port, subscribers=10),
    ),
    "streams": ("500 StreamMetrics streams at 100 ms", STREAM_SECONDS, stream_lags),
}


def _py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy not found: run `make install` (it is in the dev extras)")
    return found


def _record(pid: int, seconds: float, out: Path, fmt: str) -> subprocess.Popen:
    args = [_py_spy(), "record", "--pid", str(pid), "--rate", str(RATE_HZ), "--nonblocking"]
    args += ["--duration", str(int(seconds)), "--format", fmt, "--output", str(out)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def top_frames(collapsed: Path, count: int = TOP) -> list[tuple[float, str]]:
    """The frames with the most samples of their own, as shares of all samples."""
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack:
            continue
        total += int(samples)
        own[stack.rsplit(";", 1)[-1]] += int(samples)
    return [(n / total, frame) for frame, n in own.most_common(count)] if total else []


async def _profile(name: str, out_dir: Path, tmp: Path) -> None:
    what, seconds, workload = WORKLOADS[name]
    print(f"{name}: {what}, {seconds:.0f} s …", flush=True)
    svg, raw = out_dir / f"{name}.svg", out_dir / f"{name}.txt"
    with pulse(tmp / name) as server:
        spies = [
            _record(server.process.pid, seconds, path, fmt)
            for path, fmt in ((svg, "flamegraph"), (raw, "raw"))
        ]
        await workload(server.port)
        for spy in spies:
            _, err = spy.communicate(timeout=60)
            if spy.returncode != 0:
                raise SystemExit(f"py-spy failed ({spy.returncode}): {err.decode()[-500:]}")
    print(f"  {svg}  (flame graph)\n  top frames by own samples:")
    for share, frame in top_frames(raw):
        print(f"  {share * 100:5.1f}%  {frame}")


async def main(out_dir: Path, names: list[str]) -> None:
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown:
        raise SystemExit(f"unknown workloads {unknown}; known: {list(WORKLOADS)}")
    with tempfile.TemporaryDirectory(prefix="pulse-profile-") as tmp:
        for name in names or list(WORKLOADS):
            await _profile(name, out_dir, Path(tmp))


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("profiles")
    out.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(out, sys.argv[2:]))
