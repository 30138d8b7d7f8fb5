"""Run expectation suites through Great Expectations, in the database.

An ephemeral GX context (nothing written into the repo) with one SQL data source;
each suite validates a query asset selecting the night's rows. Data Docs are built
as static HTML under ``<QUDAO_HOME>/data_docs/``, made to work offline, with one page
per night (:mod:`qudao.quality.data_docs`). ``great_expectations`` is imported here,
lazily: it takes ~10 s cold.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import warnings
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from qudao.quality import data_docs
from qudao.quality.results import CheckResult
from qudao.quality.suites import Suite

log = logging.getLogger(__name__)

_SKIP_KWARGS = {"column", "column_list", "column_A", "column_B", "batch_id", "result_format"}


@dataclass(frozen=True)
class Batch:
    """A suite and the SQL query selecting the rows it validates tonight."""

    suite: Suite
    query: str


def check_name(expectation: dict[str, Any]) -> str:
    """``expect_x(column)`` — stable name of one expectation for results and alerts."""
    kw = expectation.get("kwargs", {})
    cols = kw.get("column_list") or [kw[k] for k in ("column", "column_A", "column_B") if k in kw]
    return f"{expectation['type']}({', '.join(cols)})"


def describe_expected(expectation: dict[str, Any]) -> str:
    kw = {k: v for k, v in expectation.get("kwargs", {}).items() if k not in _SKIP_KWARGS and v is not None}
    etype = expectation["type"]
    if etype.endswith("to_not_be_null"):
        return "no nulls"
    if etype.endswith("to_be_unique"):
        return "unique"
    return json.dumps(kw, ensure_ascii=False, default=str) if kw else etype


#: unexpected values a check keeps as examples (the alert and Data Docs show them). GX's
#: default is 20; every numeric one is a Decimal, and GX's conversion of a Decimal for its
#: stores inspects the whole call stack (``great_expectations.util.convert_decimal_to_float``
#: calls ``inspect.stack()``): under an Airflow task that cost a small night's mart gate 2 s.
EXAMPLES = 5
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES}


def describe_observed(result: dict[str, Any]) -> str:
    if "unexpected_count" in result:
        text = f"{result.get('unexpected_count')} of {result.get('element_count')} rows unexpected"
        sample = result.get("partial_unexpected_list") or []
        if sample:
            text += f", e.g. {json.dumps(sample[:EXAMPLES], ensure_ascii=False, default=str)}"
        return text
    if "observed_value" in result:
        return json.dumps(result["observed_value"], ensure_ascii=False, default=str)
    return json.dumps(result, ensure_ascii=False, default=str)[:300]


class _CompiledTemplates:
    """A process-wide Jinja bytecode cache for GX's Data Docs views (a ``jinja2.BytecodeCache``).

    Every GX view makes a Jinja environment of its own, so each page of every gate run
    compiled the same ~35 templates again: about 6 s of a small night's 9 s raw gate on
    2 busy cores. Keyed by template and source checksum, like Jinja's own file cache.
    """

    def __init__(self) -> None:
        self._code: dict[str, tuple[str, Any]] = {}

    def get_bucket(self, environment: Any, name: str, filename: str | None, source: str) -> Any:
        from jinja2.bccache import Bucket

        key = f"{name}|{filename}"
        bucket = Bucket(environment, key, hashlib.sha1(source.encode("utf-8")).hexdigest())
        checksum, code = self._code.get(key, (None, None))
        if checksum == bucket.checksum:
            bucket.code = code
        return bucket

    def set_bucket(self, bucket: Any) -> None:
        self._code[bucket.key] = (bucket.checksum, bucket.code)


_TEMPLATES = _CompiledTemplates()


def _share_compiled_templates() -> None:
    """Give every GX Jinja view the shared :class:`_CompiledTemplates` (once per process)."""
    from great_expectations.render.view.view import DefaultJinjaView

    init = DefaultJinjaView.__init__
    if getattr(init, "_qudao_shared", False):
        return

    @functools.wraps(init)
    def shared_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.env.bytecode_cache = _TEMPLATES

    shared_init._qudao_shared = True  # type: ignore[attr-defined]
    DefaultJinjaView.__init__ = shared_init  # type: ignore[method-assign]


def run_batches(
    sqlalchemy_url: str, batches: list[Batch], docs_dir: Path, run_name: str, *, night: date
) -> tuple[list[CheckResult], Path | None]:
    """Validate every batch with GX; returns results and the night's Data Docs page.

    That page, ``<docs_dir>/nights/<YYYY-MM-DD>/index.html``, lists every gate run of
    the night; the validation pages of earlier nights stay.
    """
    if not batches:
        return [], None
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    _share_compiled_templates()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    docs_dir.mkdir(parents=True, exist_ok=True)
    site = {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        "site_index_builder": {
            "class_name": "KeepEveryPageIndexBuilder",  # keeps earlier nights' pages; see data_docs
            "module_name": "qudao.quality.gx_index",
        },
    }
    context.add_data_docs_site(site_name="qudao", site_config=site)
    # "a more specific PostgresDatasource may be more appropriate": add_sql is deliberate
    warnings.filterwarnings("ignore", message=".*generic SQLDatasource.*")
    source = context.data_sources.add_sql(name="warehouse", connection_string=sqlalchemy_url)
    definitions = []
    results: list[CheckResult] = []
    for i, b in enumerate(batches):
        asset = source.add_query_asset(name=f"q{i}_{b.suite.name}", query=b.query)
        batch_def = asset.add_batch_definition_whole_table("night")
        valid = []
        for exp in b.suite.expectations:  # GX logs and drops an invalid one: make it a failed check
            try:
                ExpectationConfiguration(**exp).to_domain_obj()
                valid.append(exp)
            except Exception as exc:
                results.append(
                    CheckResult(
                        b.suite.name,
                        check_name(exp),
                        "error",
                        False,
                        observed=f"invalid expectation: {exc}"[:500],
                        expected="an expectation Great Expectations can run",
                        detail=str(b.suite.path or ""),
                    )
                )
        suite = context.suites.add(
            ExpectationSuite(name=b.suite.name, expectations=valid, meta={"qudao": b.suite.options})
        )
        definitions.append(
            context.validation_definitions.add(
                gx.ValidationDefinition(name=f"v_{b.suite.name}", data=batch_def, suite=suite)
            )
        )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="qudao_gate",
            validation_definitions=definitions,
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["qudao"])],
            result_format=RESULT_FORMAT,
        )
    )
    run = checkpoint.run(run_id=gx.RunIdentifier(run_name=run_name))
    suite_runs: list[data_docs.SuiteRun] = []
    for key, vr in run.run_results.items():
        suite_name = vr.suite_name
        first = len(results)
        for r in vr.results:
            cfg = r.expectation_config
            exp = {"type": cfg.type, "kwargs": dict(cfg.kwargs), "meta": dict(cfg.meta or {})}
            exc = (r.exception_info or {}) if hasattr(r, "exception_info") else {}
            raised = bool(exc.get("raised_exception"))
            results.append(
                CheckResult(
                    suite=suite_name,
                    check_name=check_name(exp),
                    severity=exp["meta"].get("severity", "error"),
                    passed=bool(r.success),
                    observed="exception" if raised else describe_observed(dict(r.result or {})),
                    expected=describe_expected(exp),
                    detail=(str(exc.get("exception_message"))[:500] if raised else "via Great Expectations"),
                )
            )
        mine = results[first:]
        failed = [
            f"[{c.severity}] {c.check_name}: observed {c.observed}, expected {c.expected}"
            for c in mine
            if not c.passed
        ]
        page = _page(context.get_docs_sites_urls(resource_identifier=key, site_names=["qudao"]), docs_dir)
        errors = sum(not c.passed and c.severity == "error" for c in mine)
        warnings_ = sum(not c.passed and c.severity != "error" for c in mine)
        suite_runs.append(
            data_docs.SuiteRun(run_name, suite_name, len(mine), errors, warnings_, failed, page)
        )
    data_docs.make_offline(docs_dir)
    return results, data_docs.add_night_runs(docs_dir, night, suite_runs)


def _page(urls: list[dict[str, Any]], site: Path) -> str | None:
    """The GX page's path relative to the site, from ``get_docs_sites_urls``."""
    for u in urls:
        url = u.get("site_url") or ""
        if url.startswith("file://"):
            path = Path(unquote(urlparse(url).path)).resolve()
            if path.is_relative_to(site.resolve()):
                return path.relative_to(site.resolve()).as_posix()
    return None
