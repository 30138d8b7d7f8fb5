"""The semantic layer: every KPI defined once (dbt semantic models + MetricFlow), read from ``marts``.

``qudao.metrics.engine`` answers metric queries; ``qudao.metrics.cli`` is ``qudao metrics``.
The definitions live beside the marts: ``dbt_project/models/marts/<domain>/_<domain>__semantic.yml``.
"""
