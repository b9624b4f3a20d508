"""Benchmarks: each prints its result as a ratio against a named baseline measured in the same run."""
