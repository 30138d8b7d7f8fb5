"""Which nodes a dbt build runs, decided from ``ops.dbt_state`` (``qudao.transform.plan_tests``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qudao.transform import FULL_HISTORY_TAG, VIEWS, plan_tests, project_checksum

DONE = {"tested_in_full": "true", "seeds_sha256": "abc"}


def test_a_new_warehouse_builds_and_tests_everything() -> None:
    plan = plan_tests({}, "abc", full_refresh=False)
    assert (plan.night, plan.reload_seeds) == (False, True)
    assert plan.dbt_args() == []


def test_a_night_after_a_full_build_tests_the_nights_rows_without_unit_tests_or_seeds() -> None:
    plan = plan_tests(DONE, "abc", full_refresh=False)
    assert (plan.night, plan.reload_seeds) == (True, False)
    assert plan.dbt_args() == [
        "--exclude",
        f"tag:{FULL_HISTORY_TAG}",
        "--exclude-resource-type",
        "unit_test",
        "seed",
    ]


def test_changed_seed_files_are_reloaded_on_a_night() -> None:
    plan = plan_tests(DONE, "def", full_refresh=False)
    assert (plan.night, plan.reload_seeds) == (True, True)
    assert plan.dbt_args() == ["--exclude", f"tag:{FULL_HISTORY_TAG}", "--exclude-resource-type", "unit_test"]


def test_a_full_refresh_tests_everything_and_reloads_seeds() -> None:
    plan = plan_tests(DONE, "abc", full_refresh=True)
    assert (plan.night, plan.reload_seeds) == (False, True)
    assert plan.dbt_args() == []


VIEWS_DONE = {**DONE, "views_sha256": "p1"}


def test_a_night_does_not_create_again_views_made_from_the_same_project_files() -> None:
    plan = plan_tests(VIEWS_DONE, "abc", full_refresh=False, project="p1", views_there=True)
    assert plan.views_current
    assert plan.dbt_args() == [
        "--exclude",
        f"tag:{FULL_HISTORY_TAG}",
        VIEWS,
        "--exclude-resource-type",
        "unit_test",
        "seed",
    ]


def test_views_are_created_when_the_project_changed_a_view_is_missing_or_it_is_no_night() -> None:
    changed = plan_tests(VIEWS_DONE, "abc", full_refresh=False, project="p2", views_there=True)
    missing = plan_tests(VIEWS_DONE, "abc", full_refresh=False, project="p1", views_there=False)
    refresh = plan_tests(VIEWS_DONE, "abc", full_refresh=True, project="p1", views_there=True)
    # not a night: the views' own tests (full_history) run, and excluding a view would drop them
    untested = plan_tests({**VIEWS_DONE, "tested_in_full": "false"}, "abc", False, "p1", True)
    for plan in (changed, missing, refresh, untested):
        assert not plan.views_current
        assert VIEWS not in plan.dbt_args()


def test_the_project_checksum_follows_a_model_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "dbt_project"
    ignore = shutil.ignore_patterns("target", "logs")
    shutil.copytree(Path(__file__).parents[2] / "dbt_project", project, ignore=ignore)
    monkeypatch.setenv("QUDAO_DBT_PROJECT_DIR", str(project))
    before = project_checksum()
    (project / "tests" / "assert_nothing.sql").write_text("select 1 where false\n")  # not a view's input
    assert project_checksum() == before
    view = next((project / "models" / "staging").rglob("stg_*.sql"))
    view.write_text(view.read_text() + "\n-- changed\n")
    assert project_checksum() != before


def test_a_build_leaves_the_manifest_unwritten_only_while_no_project_file_is_newer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate and publishing read target/manifest.json: it must be of the project as it is."""
    import os

    from qudao.transform import manifest_is_current, manifest_path

    project = tmp_path / "dbt_project"
    ignore = shutil.ignore_patterns("target")
    shutil.copytree(Path(__file__).parents[2] / "dbt_project", project, ignore=ignore)
    monkeypatch.setenv("QUDAO_DBT_PROJECT_DIR", str(project))
    assert not manifest_is_current()  # none written yet
    manifest = manifest_path()
    manifest.parent.mkdir()
    manifest.write_text("{}")
    later = manifest.stat().st_mtime_ns + 10**9
    os.utime(manifest, ns=(later, later))
    assert manifest_is_current()
    (project / "target" / "run_results.json").write_text("{}")  # dbt's own output does not count
    os.utime(project / "target" / "run_results.json", ns=(later + 10**9, later + 10**9))
    assert manifest_is_current()
    model = next((project / "models" / "marts").rglob("*.yml"))
    os.utime(model, ns=(later + 10**9, later + 10**9))
    assert not manifest_is_current()
