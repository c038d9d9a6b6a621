"""The last node tests: a second node on the same machine is refused at once with a message that
names the running one, stopping the node leaves the machine as it found it, and so does the next
start after a node whose processes were all killed."""

from __future__ import annotations

import os
import signal
import sys

import pytest
from release import Node, NodeBusy, Processes, machine_state, reclaim

from helpers import eventually

pytestmark = pytest.mark.e2e


def test_a_second_node_is_refused_naming_the_first(node: Node, tmp_path) -> None:
    second = Node(tmp_path / "second", env=node.env)
    with pytest.raises(NodeBusy) as error:
        second.up(progress=_progress)
    assert str(node.dir) in str(error.value)
    assert "make node-down" in str(error.value)
    assert not (tmp_path / "second" / "run").exists(), "nothing of the second node may start"


def test_stopping_the_node_leaves_the_machine_as_it_was(
    node: Node, machine_before: dict[str, object]
) -> None:
    node.down(progress=_progress)
    _assert_as_before(machine_before)


def test_what_a_killed_node_left_is_reclaimed(
    node: Node, machine_before: dict[str, object]
) -> None:
    killed = Node(node.dir, env=node.env)
    killed.up(progress=_progress)
    for processes in (killed.processes, killed.cluster.processes):
        _kill_every_process(processes)
    assert killed.owner() is None, "the node still runs"
    assert machine_state()["iptables"] != machine_before["iptables"], "nothing was left"
    reclaim(progress=_progress, env=node.env)
    _assert_as_before(machine_before)


def _kill_every_process(processes: Processes) -> None:
    names = [p.stem for p in (processes.dir / "run").glob("*.pid")]
    for pid in filter(None, map(processes.pid, names)):
        os.killpg(pid, signal.SIGKILL)  # each runs in its own session
    eventually(lambda: not any(map(processes.pid, names)), "killed", timeout_s=30, every_s=0.2)


def _progress(line: str) -> None:
    print(line, file=sys.stderr)


def _assert_as_before(machine_before: dict[str, object]) -> None:
    after = machine_state()
    before_sysctls, after_sysctls = machine_before["sysctls"], after["sysctls"]
    changed = {
        k: (before_sysctls[k], after_sysctls[k])
        for k in before_sysctls.keys() & after_sysctls.keys()
        if before_sysctls[k] != after_sysctls[k]
    }
    assert not changed, f"sysctls left changed: {changed}"
    for key, before in machine_before.items():
        if key != "sysctls":
            assert after[key] == before, f"{key} differs after the node stopped"
