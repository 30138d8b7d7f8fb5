"""Every metric question in the docs compiles: its metrics, group-bys, filters and options exist."""

from __future__ import annotations

import argparse
import re
import shlex

import pytest

from qudao.config import PROJECT_ROOT
from qudao.metrics.cli import add_arguments
from qudao.metrics.engine import Metrics

DOCS = ("docs/analysts.md", "docs/reports.md", "README.md")


def _questions() -> list[str]:
    out = []
    for doc in DOCS:
        text = (PROJECT_ROOT / doc).read_text(encoding="utf-8").replace("\\\n", " ")
        for m in re.finditer(r"qudao metrics query ([^`\n]+)", text):
            out.append(m.group(1).split("   #")[0].strip())
    return out


@pytest.fixture(scope="module")
def layer() -> Metrics:
    return Metrics("postgresql://nobody@localhost/unused")  # compiling needs no connection


def test_the_docs_have_metric_questions() -> None:
    assert len(_questions()) >= 10


@pytest.mark.parametrize("question", _questions())
def test_a_documented_question_compiles(layer: Metrics, question: str) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["query", *shlex.split(question)])
    sql = layer.sql(
        args.metrics,
        args.group_by,
        where=args.where,
        start=args.start,
        end=args.end,
        order_by=args.order,
        limit=args.limit,
    )
    assert '"marts".' in sql and "marts_candidate" not in sql
