"""Counts of calls and errors by method and status code, and the live summary line."""

from __future__ import annotations

import time
from collections import Counter

import grpc

from pulse.telemetry import Telemetry
from pulse.telemetry import conventions as c

__all__ = ["Stats"]


class Stats:
    def __init__(self, telemetry: Telemetry | None) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.messages = 0
        self.active = 0
        self._telemetry = telemetry

    def finished(self, method: str, kind: str, code: grpc.StatusCode, started: float) -> None:
        self.calls[(method, code.name)] += 1
        if self._telemetry is not None:
            self._telemetry.instruments.rpc_client_duration.record(
                time.perf_counter() - started,
                {
                    c.RPC_SYSTEM_NAME: "grpc",
                    c.RPC_METHOD: method,
                    c.RPC_RESPONSE_STATUS_CODE: code.name,
                    c.ATTR_RPC_TYPE: kind,
                },
            )

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def by_code(self) -> Counter[str]:
        codes: Counter[str] = Counter()
        for (_, code), n in self.calls.items():
            codes[code] += n
        return codes

    def errors(self) -> Counter[str]:
        return Counter({k: v for k, v in self.by_code().items() if k != "OK"})

    def line(self) -> str:
        errors = self.errors()
        shown = " ".join(f"{k}={v}" for k, v in sorted(errors.items())) or "none"
        return (
            f"calls {self.total} ok {self.by_code().get('OK', 0)} | errors {shown} | "
            f"streams open {self.active} | messages {self.messages}"
        )
