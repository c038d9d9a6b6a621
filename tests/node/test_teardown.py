"""The last node tests: a second node on the same machine is refused at once with a message that
names the running one, and stopping the node leaves the machine as it found it."""

from __future__ import annotations

import sys

import pytest
from release import Node, NodeBusy, machine_state

pytestmark = pytest.mark.e2e


def test_a_second_node_is_refused_naming_the_first(node: Node, tmp_path) -> None:
    second = Node(tmp_path / "second", env=node.env)
    with pytest.raises(NodeBusy) as error:
        second.up(progress=lambda line: print(line, file=sys.stderr))
    assert str(node.dir) in str(error.value)
    assert "make node-down" in str(error.value)
    assert not (tmp_path / "second" / "run").exists(), "nothing of the second node may start"


def test_stopping_the_node_leaves_the_machine_as_it_was(
    node: Node, machine_before: dict[str, object]
) -> None:
    node.down(progress=lambda line: print(line, file=sys.stderr))
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
