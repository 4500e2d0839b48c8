"""Exporter tests: fixtures and helpers live in tests/exporters/bridgetest.py."""

from tests.exporters.bridgetest import procs  # noqa: F401
