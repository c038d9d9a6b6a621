"""Copy the files the chart packages verbatim into deploy/helm/pulse/files, or check the copies.

Helm reads nothing outside the chart directory, so the collector config, the alert rules, the
Alertmanager config and templates, and the Grafana dashboards and provisioning are copied in.
Each copy keeps its repository path under ``files/`` (``alerts/rules/x.yaml`` becomes
``files/alerts/rules/x.yaml``). Sources are globs: files added later are picked up by the next
sync, and copies whose source is gone are removed.

    python deploy/helm/sync.py           copy, then remove stale copies
    python deploy/helm/sync.py --check   exit 1 when a copy differs, is missing or is stale
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

__all__ = ["FILES_DIR", "REPO", "SOURCES", "copies", "differences", "sources", "sync"]

REPO = Path(__file__).resolve().parents[2]
FILES_DIR = REPO / "deploy/helm/pulse/files"

# Globs relative to the repository root: the only place that says what the chart packages.
SOURCES = (
    "deploy/otel-collector/config.yaml",
    "deploy/otel-collector/k8s.yaml",
    "alerts/rules/*.yaml",
    "alerts/alertmanager/alertmanager.yml",
    "alerts/alertmanager/templates/*",
    "dashboards/*.json",
    # The logs dashboard, one variant per logs backend (dashboards/<backend>/).
    "dashboards/*/*.json",
    "dashboards/provisioning/**/*",
)


def sources(repo: Path = REPO) -> list[str]:
    """Repository-relative paths of every source file that exists now."""
    found = {
        path.relative_to(repo).as_posix()
        for pattern in SOURCES
        for path in repo.glob(pattern)
        if path.is_file()
    }
    return sorted(found)


def copies(files_dir: Path = FILES_DIR) -> list[str]:
    """Repository-relative source paths of every copy present under ``files_dir``."""
    if not files_dir.is_dir():
        return []
    return sorted(p.relative_to(files_dir).as_posix() for p in files_dir.rglob("*") if p.is_file())


def differences(repo: Path = REPO, files_dir: Path = FILES_DIR) -> list[str]:
    """One line per problem: a missing or differing copy, or a copy without a source."""
    wanted, present = sources(repo), set(copies(files_dir))
    problems = []
    for rel in wanted:
        if rel not in present:
            problems.append(f"missing copy: {rel}")
        elif (repo / rel).read_bytes() != (files_dir / rel).read_bytes():
            problems.append(f"differs from its source: {rel}")
    problems += [f"no source any more: {rel}" for rel in sorted(present - set(wanted))]
    return problems


def sync(repo: Path = REPO, files_dir: Path = FILES_DIR) -> list[str]:
    """Make ``files_dir`` mirror the sources; return what changed."""
    changed = []
    wanted = sources(repo)
    for rel in wanted:
        src, dst = repo / rel, files_dir / rel
        if dst.is_file() and dst.read_bytes() == src.read_bytes():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        changed.append(f"copied {rel}")
    for rel in sorted(set(copies(files_dir)) - set(wanted)):
        (files_dir / rel).unlink()
        changed.append(f"removed {rel}")
    for directory in sorted(files_dir.rglob("*"), reverse=True):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 on drift")
    args = parser.parse_args(argv)
    if args.check:
        problems = differences()
        for line in problems:
            print(f"chart files: {line}", file=sys.stderr)
        if problems:
            print("run 'make chart-sync' and commit deploy/helm/pulse/files", file=sys.stderr)
            return 1
        print(f"chart files: {len(sources())} copies match their sources")
        return 0
    for line in sync():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
