"""The simulated fleet of sources whose metrics StreamMetrics sends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Source", "build_fleet", "matching"]


@dataclass(frozen=True)
class Source:
    index: int
    labels: Mapping[str, str]


def build_fleet(hosts: int, regions: Sequence[str]) -> list[Source]:
    """``hosts`` hosts spread round-robin over ``regions``."""
    fleet = []
    for i in range(hosts):
        region = regions[i % len(regions)]
        labels = {"host": f"host-{i + 1:02d}", "region": region, "env": "production"}
        fleet.append(Source(i, labels))
    return fleet


def matching(fleet: Sequence[Source], filters: Mapping[str, str]) -> list[Source]:
    """Sources carrying every ``filters`` pair."""
    return [s for s in fleet if all(s.labels.get(k) == v for k, v in filters.items())]
