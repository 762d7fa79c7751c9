"""Benchmarks of the project: ``make bench`` (``python -m benchmarks``) runs every bench_*.py."""
