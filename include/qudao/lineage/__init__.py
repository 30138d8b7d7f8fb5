"""OpenLineage for the night: what each task read and wrote.

Airflow's OpenLineage provider emits every task's events (its transport is configured the
provider's way: ``OPENLINEAGE_URL`` for HTTP, ``AIRFLOW__OPENLINEAGE__TRANSPORT`` for any
other, off unless one of them is set; see docs/deployment.md). This package only tells it
the datasets: the load tasks' landing files and raw tables, publish's candidate and
published marts (:mod:`qudao.lineage.collect`, Airflow's hook-level lineage), and one event
pair per dbt model of ``build_marts``, children of that task's run
(:mod:`qudao.lineage.dbt_models`, openlineage-integration-common's dbt artifact processor).
"""
