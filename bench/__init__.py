"""Benchmarks of speed and scale (issue 6): ``python -m bench.run``; see README, "Performance"."""
