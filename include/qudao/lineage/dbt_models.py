"""One OpenLineage run per dbt model of the night, children of ``build_marts``' run.

dbt runs once per night (one task); its artifacts (``manifest.json``, ``run_results.json``)
say which relations each model read and wrote. openlineage-integration-common's dbt
processor turns them into a START and a COMPLETE (or FAIL) event per model and test,
with the inputs and outputs named as every other qudao dataset (:mod:`qudao.lineage.datasets`),
and the Airflow task's own OpenLineage run as their parent, so a lineage tool shows
raw → staging → intermediate → marts_candidate under the night's ``build_marts``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from qudao.config import environment
from qudao.lineage.datasets import namespace
from qudao.warehouse.connection import dbt_target

log = logging.getLogger(__name__)

#: the producer named in the events (openlineage's convention: a URL of the emitting code)
PRODUCER = "https://github.com/qudao/qudao/tree/main/include/qudao/lineage"


def model_events(url: str, project_dir: Path, parent: object | None, job_namespace: str) -> list[object]:
    """The OpenLineage events of the last dbt build's models and tests in ``project_dir``."""
    from openlineage.common.provider.dbt.local import DbtLocalArtifactProcessor

    class Processor(DbtLocalArtifactProcessor):
        def extract_dataset_namespace(self, profile: dict) -> None:  # the same names as the tasks'
            self.dataset_namespace = namespace(url)
            self.dataset_symlink_namespace = None

        def extract_dataset_data(self, node: Any, *args: Any, **kwargs: Any) -> tuple[str, str, dict, dict]:
            # a source is the table its identifier names (raw.crm__partners), not its dbt name
            space, name, facets, input_facets = super().extract_dataset_data(node, *args, **kwargs)
            if node.type == "source":
                meta = node.metadata_node
                table = meta.get("identifier") or meta["name"]
                name = self._format_dataset_name(meta["database"], meta["schema"], table)
            return space, name, facets, input_facets

    with environment(dbt_target(url)):  # the processor reads profiles.yml's env_var()s
        processor = Processor(
            producer=PRODUCER, job_namespace=job_namespace, project_dir=str(project_dir), skip_errors=True
        )
        if parent is not None:
            processor.dbt_run_metadata = parent
        return list(processor.parse().events())


def enabled() -> bool:
    """Is OpenLineage on (then the build must write dbt's artifacts for :func:`emit_for_running_task`)?

    Outside an Airflow task (``qudao republish``, a test) there is no run to attach the events
    to, and importing Airflow only to ask would set up its logging in a process that has none.
    """
    if "airflow.sdk" not in sys.modules:
        return False
    try:
        from airflow.providers.openlineage.conf import is_disabled
    except ImportError:
        return False
    return not is_disabled()


def emit_for_running_task(url: str, project_dir: Path) -> int:
    """Emit the last build's model events as children of the running Airflow task; returns how many.

    Does nothing (0) when OpenLineage is off. Lineage never fails a night: an error is logged.
    """
    if not enabled():
        return 0
    try:
        from airflow.providers.openlineage.plugins.listener import get_openlineage_listener
        from airflow.providers.openlineage.plugins.macros import (
            lineage_job_name,
            lineage_job_namespace,
            lineage_root_job_name,
            lineage_root_run_id,
            lineage_run_id,
        )
        from airflow.sdk import get_current_context
        from openlineage.common.provider.dbt import ParentRunMetadata

        ti = get_current_context()["ti"]
        job_namespace = lineage_job_namespace()
        parent = ParentRunMetadata(
            run_id=lineage_run_id(ti),
            job_name=lineage_job_name(ti),
            job_namespace=job_namespace,
            root_parent_run_id=lineage_root_run_id(ti),
            root_parent_job_name=lineage_root_job_name(ti),
            root_parent_job_namespace=job_namespace,
        )
        events = model_events(url, project_dir, parent, job_namespace)
        client = get_openlineage_listener().adapter.get_or_create_openlineage_client()
        for event in events:
            client.emit(event)
        return len(events)
    except Exception:
        log.exception("could not emit the OpenLineage events of the dbt models")
        return 0
