"""qudao: the channel department's data platform (Airflow + dbt + data quality)."""

__version__ = "0.1.0"
