"""Benchmarks: scripts that print figures (``make bench``), never timed unit tests."""
