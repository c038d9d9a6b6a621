"""The log bus: where Ingest puts applied batches and where Monitor reads them, behind one small
protocol, so the servicer does not care which runs: the in-process ring of one process, or a
NATS JetStream stream shared by several replicas (``log_service.jetstream``).

Either way a batch is applied whole or not at all, an acknowledged batch is stored, a batch
with a known id is a duplicate within the dedup window, and every entry gets the sequence of
one order shared by all readers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pulse.log_service.buffer import REPLAYED
from pulse.v1 import logs_pb2

__all__ = ["REPLAYED", "BatchTooLarge", "BusUnavailable", "Deliver", "LogBus"]

# The bus hands every stored batch, in the order of its sequences, to one reader per process:
# the entries (their sequence set) and the monotonic time of this process at which they were
# accepted, or REPLAYED.
Deliver = Callable[[list[logs_pb2.LogEntry], float], None]


class BatchTooLarge(ValueError):
    """The batch, as applied, is larger than the bus takes in one message; nothing was
    stored. The message names both sizes."""


class BusUnavailable(Exception):
    """The bus did not acknowledge a batch; the message says why. Its outcome is unknown, so
    callers answer UNAVAILABLE and the client retries it with the same batch id."""


class LogBus(Protocol):
    async def start(self) -> None:
        """Open the bus; a shared one keeps trying in the background until it is reached."""
        ...

    async def stop(self) -> None: ...

    async def publish(self, batch_id: str, entries: list[logs_pb2.LogEntry]) -> bool:
        """Store the batch's entries; True once stored, False when ``batch_id`` was stored
        within the dedup window (nothing is stored again). Raises ``BusUnavailable`` or
        ``BatchTooLarge``."""
        ...

    async def healthy(self) -> bool:
        """Whether batches can be published and read now (readiness)."""
        ...
