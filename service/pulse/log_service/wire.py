"""The protobuf wire format's varints, for the messages Pulse writes straight to bytes on its
hot paths (Monitor responses, OTLP exports): the prefixes of lengths below 16 KiB are looked
up, not computed."""

from __future__ import annotations

__all__ = ["length_prefix", "varint"]


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [varint(n) for n in range(1 << 14)]


def length_prefix(n: int) -> bytes:
    return _SMALL[n] if n < 1 << 14 else varint(n)
