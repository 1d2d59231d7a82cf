"""Benchmarks: throughput, time to quality and overheads, as ratios taken in one process.

Run `python -m benchmarks` (about 10 minutes on 2 cores) or `python -m benchmarks --smoke`
(seconds; what tests/test_benchmarks.py runs). Never part of the test suite's timings:
tests check that every part runs and reports, not how fast.
"""
