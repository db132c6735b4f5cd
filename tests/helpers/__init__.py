"""Shared code of the tests and the benchmarks: stacks, in-process apps, fakes, harnesses (no tests here)."""
