"""A hand-written HTTP/2 client, just enough to open a gRPC call and then fall silent: the
connection a crashed or partitioned agent leaves behind (no reads, no ping acks)."""

from __future__ import annotations

import socket
import struct
import time

__all__ = ["SilentCall"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS = 0x0, 0x1, 0x4
END_HEADERS, ACK = 0x4, 0x1


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream)


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return _frame(kind, flags, stream, payload) + payload


def _hpack_int(value: int, prefix_bits: int = 7) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([value])
    out, value = [limit], value - limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def _literal(name: str, value: str) -> bytes:
    """A header field as "literal without indexing, new name", no Huffman coding."""
    n, v = name.encode(), value.encode()
    return b"\x00" + _hpack_int(len(n)) + n + _hpack_int(len(v)) + v


def grpc_message(payload: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(payload)) + payload


class SilentCall:
    """Opens ``path`` on stream 1, sends ``messages``, then neither reads nor answers."""

    def __init__(self, host: str, port: int, path: str, messages: list[bytes]) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
        self._read_settings()
        headers = b"".join(
            _literal(k, v)
            for k, v in (
                (":method", "POST"),
                (":scheme", "http"),
                (":path", path),
                (":authority", f"{host}:{port}"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
            )
        )
        out = frame(SETTINGS, ACK, 0) + frame(HEADERS, END_HEADERS, 1, headers)
        for message in messages:
            out += frame(DATA, 0, 1, grpc_message(message))
        self.sock.sendall(out)

    def _read_settings(self) -> None:
        """Read up to the server's SETTINGS frame (a server always sends one first)."""
        buffer = b""
        while len(buffer) < 9:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("server closed before SETTINGS")
            buffer += chunk
        if buffer[3] != SETTINGS:
            raise ConnectionError(f"expected SETTINGS, got frame type {buffer[3]}")

    def closed_by_server(self, within_s: float) -> float | None:
        """Seconds until the server closed the connection (reading everything it sent), or
        None when it was still open after ``within_s``."""
        start = time.monotonic()
        self.sock.settimeout(0.5)
        while time.monotonic() - start < within_s:
            try:
                if not self.sock.recv(65536):
                    return time.monotonic() - start
            except TimeoutError:
                continue
            except ConnectionError:
                return time.monotonic() - start
        return None

    def close(self) -> None:
        self.sock.close()
