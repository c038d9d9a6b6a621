"""Checks shared by every service: values echoed into error messages, and times.

An error message names what was wrong, but a client's value is echoed cut to ``ECHO_CHARS``: a
17 KB value must not turn INVALID_ARGUMENT into a status too large to send.
"""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["ECHO_CHARS", "EPOCH_NS", "MAX_TIME_NS", "echo", "time_problem"]

ECHO_CHARS = 64
EPOCH_NS = 0
# The largest time every consumer can hold: a signed 64-bit count of nanoseconds (SQLite's
# INTEGER, OTLP's fixed64), that is 2262-04-11.
MAX_TIME_NS = 2**63 - 1
_MAX_NANOS = 999_999_999


def echo(value: object, limit: int = ECHO_CHARS) -> str:
    """``repr(value)``, cut to ``limit`` characters with the full length said."""
    try:
        text = repr(value)
    except ValueError:  # an integer longer than Python's conversion limit
        return "(a value too long to show)"
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | bytes) else len(text)
    return f"{text[:limit]}… ({size} characters)"


def time_problem(stamp: Timestamp, field: str = "time") -> str | None:
    """Why ``stamp`` is not a time Pulse can keep and export, or None.

    Allowed: 1970-01-01T00:00:00Z up to 2262-04-11 (signed 64-bit nanoseconds), nanos in
    [0, 999999999]. Earlier times cannot be exported over OTLP (unsigned nanoseconds).
    """
    if not 0 <= stamp.nanos <= _MAX_NANOS:
        return f"{field}: nanos {stamp.nanos} is outside [0, {_MAX_NANOS}]"
    ns = stamp.seconds * 1_000_000_000 + stamp.nanos
    if not EPOCH_NS <= ns <= MAX_TIME_NS:
        return f"{field}: {stamp.seconds} s is outside 1970-01-01 to 2262-04-11"
    return None
