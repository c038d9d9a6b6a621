"""Pulse: a gRPC streaming service, observable end to end."""

__all__ = ["__version__"]

__version__ = "0.1.0"
