#!/usr/bin/env python3
"""Ingest cost of the stack's native Prometheus and collector (docs/capacity.md); the code is scripts/capacity/.

  .venv/bin/python -m scripts.bench_capacity --help        (from the repository root)"""
import sys

from scripts.capacity.cli import main

if __name__ == "__main__":
    sys.exit(main())
