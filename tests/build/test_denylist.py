"""No go.mod, go.sum or build.sh of the repository names a module of deploy/local/denylist.txt
(AGPL projects whose modules are never downloaded or built here)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DENYLIST = REPO / "deploy/local/denylist.txt"
CHECKED = ("*go.mod", "*go.sum", "*build.sh")


def denied_modules(text: str) -> dict[str, str]:
    """Module path -> reason, from the denylist's format."""
    entries = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            module, reason = line.split(maxsplit=1)
            entries[module] = reason.strip()
    return entries


def mentions(text: str, modules: dict[str, str]) -> list[str]:
    """The denied modules ``text`` names: the path itself, its packages or major versions
    (``…/loki/v3/cmd/loki``), never a module that merely shares a prefix
    (``github.com/grafana/grafana-foundation-sdk``)."""
    return [m for m in modules if re.search(re.escape(m) + r"(?![\w.-])", text)]


def checked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *CHECKED],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [REPO / path for path in listed if (REPO / path).is_file()]


def test_the_denylist_names_loki_grafana_and_tempo_with_reasons() -> None:
    modules = denied_modules(DENYLIST.read_text())
    assert set(modules) == {
        "github.com/grafana/loki",
        "github.com/grafana/grafana",
        "github.com/grafana/tempo",
    }
    assert all("AGPL" in reason for reason in modules.values()), modules


def test_no_go_module_file_or_build_script_names_a_denied_module() -> None:
    modules = denied_modules(DENYLIST.read_text())
    files = checked_files()
    # The wrapper modules' go.mod and go.sum, and the build script itself.
    assert REPO / "deploy/local/build.sh" in files
    assert any(f.name == "go.sum" for f in files), files
    found = {
        str(f.relative_to(REPO)): hits for f in files if (hits := mentions(f.read_text(), modules))
    }
    assert not found, f"denied modules (deploy/local/denylist.txt) named in: {found}"


@pytest.mark.parametrize(
    ("line", "hits"),
    [
        ("require github.com/grafana/loki/v3 v3.7.8", ["github.com/grafana/loki"]),
        ("github.com/grafana/tempo v1.5.0 h1:abc=", ["github.com/grafana/tempo"]),
        (
            'go_install "$dir" "github.com/grafana/grafana/pkg/cmd/grafana@v12.3.0"',
            ["github.com/grafana/grafana"],
        ),
        ("github.com/grafana/grafana-foundation-sdk/go v0.0.22", []),
        ("github.com/grafana/regexp v0.0.0-20250905093917-f7b3be9d1853", []),
        ("github.com/grafana/lokiexplore v1.0.0", []),
    ],
)
def test_a_denied_module_is_found_and_its_namesakes_are_not(line: str, hits: list[str]) -> None:
    assert mentions(line, denied_modules(DENYLIST.read_text())) == hits
