"""Orchestration: what the Airflow tasks call, and running the DAG from the CLI."""
