"""Fixtures for qudao's tests and benchmarks: extract files in a landing zone (:mod:`.extracts`)."""
