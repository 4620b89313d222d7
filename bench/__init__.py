"""Throughput and overhead benchmarks (`python bench/throughput.py`); see docs/results.md."""
