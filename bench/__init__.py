"""Benchmarks: `python -m bench` runs them all; each prints ratios against a baseline run beside it."""
