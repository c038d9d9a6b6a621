"""The ``pulse`` command."""
