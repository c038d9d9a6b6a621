"""The ports of the local stack, the shared engines and the local node (control plane
included): the tests' ones never land where an outgoing connection can take them, never overlap
a developer's running stack, and a taken port stops a start-up with the variable to move it."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy" / "local"))

from cluster import COMPONENTS, Cluster  # noqa: E402
from engines import ORDER as ENGINES  # noqa: E402
from engines import Engines  # noqa: E402
from node import Node  # noqa: E402
from processes import Processes, StartupError, busy_ports, ephemeral_ports  # noqa: E402
from stack import ORDER, Stack  # noqa: E402

from helpers import CLUSTER_PORT_OFFSET, SERVER_PORTS, STACK_PORT_OFFSET, free_port  # noqa: E402


def _stack(tmp_path: Path, offset: int) -> Stack:
    return Stack(tmp_path / "stack", {"PULSE_STACK_PORT_OFFSET": str(offset)})


def _cluster(tmp_path: Path, offset: int) -> Cluster:
    return Cluster(tmp_path / "cluster", {"PULSE_CLUSTER_PORT_OFFSET": str(offset)})


def _node_ports(tmp_path: Path, offset: int) -> dict[str, int]:
    node = Node(tmp_path / "node", {"PULSE_CLUSTER_PORT_OFFSET": str(offset)})
    return {**node.cluster.ports, **node.ports}


def _engines(tmp_path: Path, offset: int) -> Engines:
    return Engines(tmp_path / "engines", {"PULSE_STACK_PORT_OFFSET": str(offset)})


def _test_ports(tmp_path: Path) -> dict[str, int]:
    stack = _stack(tmp_path, STACK_PORT_OFFSET).ports
    engines = _engines(tmp_path, STACK_PORT_OFFSET).ports
    cluster = _node_ports(tmp_path, CLUSTER_PORT_OFFSET)
    return {
        **{f"stack {k}": v for k, v in stack.items()},
        **{f"engines {k}": v for k, v in engines.items()},
        **{f"cluster {k}": v for k, v in cluster.items()},
    }


def _default_ports(tmp_path: Path) -> set[int]:
    """What a developer's `make stack-up`, `make engines-up` and `make node-up` listen on."""
    return {
        *_stack(tmp_path, 0).ports.values(),
        *_engines(tmp_path, 0).ports.values(),
        *_node_ports(tmp_path, 0).values(),
    }


def test_the_tests_ports_are_below_the_outgoing_connections_range(tmp_path: Path) -> None:
    outgoing = ephemeral_ports()
    inside = {k: v for k, v in _test_ports(tmp_path).items() if v in outgoing}
    assert not inside, f"in {outgoing.start}-{outgoing.stop - 1}: {inside}"
    assert SERVER_PORTS.stop <= outgoing.start, f"free_port's {SERVER_PORTS} reaches {outgoing}"


def test_free_port_is_free_unique_and_outside_the_other_blocks(tmp_path: Path) -> None:
    fixed = {*_test_ports(tmp_path).values(), *_default_ports(tmp_path)}
    assert not fixed & set(SERVER_PORTS)
    ports = [free_port(), free_port()]
    assert ports[0] != ports[1]
    assert busy_ports({"a": ports[0], "b": ports[1]}) == {}


def test_the_tests_ports_are_distinct_from_each_other_and_the_defaults(tmp_path: Path) -> None:
    tests = _test_ports(tmp_path)
    assert len(set(tests.values())) == len(tests), tests
    defaults = _default_ports(tmp_path)
    shared = {k: v for k, v in tests.items() if v in defaults}
    assert not shared, f"also used by `make stack-up` or `make node-up`: {shared}"


def test_every_stack_port_belongs_to_a_component(tmp_path: Path) -> None:
    stack = _stack(tmp_path, 0)
    owned = [key for name in ORDER for key in stack.ports_of(name)]
    assert sorted(owned) == sorted(stack.ports)


def test_every_cluster_port_belongs_to_a_component(tmp_path: Path) -> None:
    owned = [key for component in COMPONENTS.values() for key in component.ports]
    assert sorted(owned) == sorted(_cluster(tmp_path, 0).ports)


def test_every_engine_port_belongs_to_an_engine_and_moves_with_the_offset(tmp_path: Path) -> None:
    engines = _engines(tmp_path, 0)
    owned = [key for name in ENGINES for key in engines.ports_of(name)]
    assert sorted(owned) == sorted(engines.ports)
    moved = _engines(tmp_path, 1000).ports
    assert {k: v - 1000 for k, v in moved.items()} == engines.ports


def test_a_taken_port_stops_the_start_naming_it(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert busy_ports({"LOKI_PORT": port}) == {"LOKI_PORT": port}
        processes = Processes(tmp_path, "PULSE_STACK_PORT_OFFSET")
        with pytest.raises(StartupError) as error:
            processes.start("loki", ["sleep", "60"], ports={"LOKI_PORT": port})
    message = str(error.value)
    assert f"port {port} (LOKI_PORT) already in use" in message
    assert "PULSE_STACK_PORT_OFFSET" in message
    assert processes.pid("loki") is None, "nothing may start on a taken port"
