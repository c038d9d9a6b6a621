"""Client side of Pulse: channels with TLS, credentials as call metadata, client telemetry."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

__all__ = ["ClientOptions", "open_channel"]

DEFAULT_TARGET = "localhost:50051"


@dataclass(frozen=True)
class ClientOptions:
    target: str = DEFAULT_TARGET
    token: str | None = None
    api_key: str | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @classmethod
    def from_env(cls, **overrides: object) -> ClientOptions:
        values = {
            "target": os.environ.get("PULSE_TARGET", DEFAULT_TARGET),
            "token": os.environ.get("PULSE_TOKEN") or None,
            "api_key": os.environ.get("PULSE_API_KEY") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        if self.token:
            return (("authorization", f"Bearer {self.token}"),)
        if self.api_key:
            return (("x-api-key", self.api_key),)
        return ()


def open_channel(
    options: ClientOptions, interceptors: Sequence[grpc.aio.ClientInterceptor] = ()
) -> grpc.aio.Channel:
    """An aio channel to ``options.target``; TLS when a CA (or client certificate) is given."""
    channel_options = [("grpc.keepalive_time_ms", 30_000), ("grpc.enable_retries", 1)]
    if options.tls_ca or options.tls_cert:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=options.tls_ca.read_bytes() if options.tls_ca else None,
            private_key=options.tls_key.read_bytes() if options.tls_key else None,
            certificate_chain=options.tls_cert.read_bytes() if options.tls_cert else None,
        )
        return grpc.aio.secure_channel(
            options.target, credentials, options=channel_options, interceptors=interceptors
        )
    return grpc.aio.insecure_channel(
        options.target, options=channel_options, interceptors=interceptors
    )
