"""Which tests a dbt build runs, decided from ``ops.dbt_state`` (``qudao.transform.plan_tests``)."""

from __future__ import annotations

from qudao.transform import FULL_HISTORY_TAG, plan_tests

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
