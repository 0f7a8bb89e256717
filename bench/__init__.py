"""NoChat's benchmark harness: `python -m bench [--quick] [--scenario NAME ...]`.

The orchestrator (this package's `__main__`) starts `nochat serve` pinned to
core 0 and one or more load-generator worker processes (`bench.worker`) pinned
to core 1, drives them over a line-oriented JSON command pipe, measures the
server's CPU and memory from /proc, and writes the report.
"""
