"""Hook-level lineage: a task tells Airflow which datasets it read and wrote.

Airflow's OpenLineage provider turns what a task collected into the inputs and outputs of
its COMPLETE event. Outside a running task (a direct ``qudao load``, the benchmarks) the
collector discards them.
"""

from __future__ import annotations

from collections.abc import Iterable

from qudao.contracts import entity
from qudao.lineage.datasets import file_uri, table_uri


class _QudaoStep:
    """What collected the assets (Airflow groups collected assets by it)."""


_STEP = _QudaoStep()


def record(inputs: Iterable[str], outputs: Iterable[str]) -> None:
    """Make the asset URIs a task read (``inputs``) and wrote (``outputs``) its lineage.

    A task records its lineage once. The collector is one per process, and ``qudao run``
    (``dag.test``) runs every task of a night in one process, so the collector is renewed
    first: what an earlier task collected is not this task's lineage.
    """
    try:
        from airflow.sdk.lineage import get_hook_lineage_collector
    except ImportError:  # Airflow is not installed where this runs
        return
    get_hook_lineage_collector.cache_clear()
    collector = get_hook_lineage_collector()
    for uri in inputs:
        collector.add_input_asset(_STEP, uri=uri)
    for uri in outputs:
        collector.add_output_asset(_STEP, uri=uri)


def record_load(url: str, files: Iterable[object]) -> None:
    """A load task's lineage: each delivered file in, the raw table of each loaded file out."""
    files = list(files)
    loaded = {entity(f.qualified).raw_table for f in files if getattr(f, "status", None) == "loaded"}
    record([file_uri(f.path) for f in files], [table_uri(url, "raw", t) for t in sorted(loaded)])


def record_publish(url: str, tables: Iterable[str]) -> None:
    """Publish's lineage: each candidate mart in, its published table out."""
    tables = sorted(tables)
    record(
        [table_uri(url, "marts_candidate", t) for t in tables],
        [table_uri(url, "marts", t) for t in tables],
    )
