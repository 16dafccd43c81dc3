"""Benchmarks of mini_transformer: timings are reported, never asserted."""
