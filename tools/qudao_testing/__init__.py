"""Fixtures for qudao's tests and benchmarks: extract files in a landing zone (:mod:`.extracts`),
reads of Airflow's metadata (:mod:`.airflow_db`)."""
